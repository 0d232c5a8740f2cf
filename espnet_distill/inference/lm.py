"""Language models for shallow fusion: found, checked against the ASR model's tokens, loaded safely.

An LM here is what ``espnet_distill.bin.lm_train`` writes (ESPnet's LM task:
``config.yaml`` and ESPnet's model files), named by its exp dir or by one model
file in it.  Before it is used beside a CTC model:

- its token list must be the ASR model's, token for token: an LM trained on
  another list would score other symbols under the same ids, so a mismatch is
  an error naming both files and the first id that differs;
- its weights are read by the safe loader (a file that would unpickle code is
  refused, naming it) into the model its ``config.yaml`` describes.

The search that fuses it is :func:`espnet_distill.inference.ctc_search.ctc_beam_search`.
"""

import math
from pathlib import Path
from typing import Any, List, Sequence, Tuple, Union

from espnet_distill.utils.checkpoint import CheckpointError, read_training_config

PathLike = Union[str, Path]
# The model file of an LM exp dir, in order of preference: ESPnet's n-best average by dev loss
# (perplexity), the best epoch, the last epoch.
LM_MODEL_FILES = ("valid.loss.ave.pth", "valid.loss.best.pth", "latest.pth")


class TokenListMismatch(ValueError):
    """An LM and an ASR model that do not share their token list."""


def lm_files(lm: PathLike) -> Tuple[Path, Path]:
    """``(config.yaml, model file)`` of an LM given as an exp dir (its preferred model file) or as a model file."""
    path = Path(lm)
    if path.is_dir():
        for name in LM_MODEL_FILES:
            if (path / name).is_file():
                return path / "config.yaml", path / name
        raise FileNotFoundError(f"{path}: none of {', '.join(LM_MODEL_FILES)}; has the LM's training finished?")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such LM (an lm_train exp dir, or a model file in one)")
    return path.parent / "config.yaml", path


def lm_token_list(config_file: Path) -> List[str]:
    """The token list an LM's ``config.yaml`` holds (ESPnet writes it inline)."""
    from espnet_distill.text.tokens import read_token_list

    config = read_training_config(config_file)
    if config.get("lm") is None or "token_list" not in config:
        raise CheckpointError(f"{config_file}: not an LM's training config (no 'lm' or 'token_list' key)")
    tokens = config["token_list"]
    return read_token_list(tokens) if isinstance(tokens, str) else [str(t) for t in tokens]


def check_token_lists(
    lm_config: Path, lm_tokens: Sequence[str], asr_source: PathLike, asr_tokens: Sequence[str]
) -> None:
    """:class:`TokenListMismatch` naming both files unless the two lists are equal."""
    if list(lm_tokens) == list(asr_tokens):
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(lm_tokens, asr_tokens)) if a != b), min(len(lm_tokens), len(asr_tokens))
    )
    lm_at = repr(lm_tokens[first]) if first < len(lm_tokens) else "nothing"
    asr_at = repr(asr_tokens[first]) if first < len(asr_tokens) else "nothing"
    raise TokenListMismatch(
        f"the LM's token list ({lm_config}, {len(lm_tokens)} tokens) is not the ASR model's ({asr_source}, "
        f"{len(asr_tokens)} tokens): id {first} is {lm_at} in the LM and {asr_at} in the ASR model; "
        "train the LM on the ASR model's token list"
    )


def load_lm(lm: PathLike, asr_tokens: Sequence[str], asr_source: PathLike, device: str = "cpu") -> Any:
    """The language model (ESPnet's ``AbsLM``, in eval mode) of ``lm``, checked against ``asr_tokens``.

    ``asr_source`` names the file the ASR tokens come from, for the error message.
    """
    from espnet_distill.tasks.lm import LMTask

    config_file, model_file = lm_files(lm)
    check_token_lists(config_file, lm_token_list(config_file), asr_source, asr_tokens)
    try:
        model, _ = LMTask.build_model_from_file(config_file, model_file, device)
    except (TypeError, ValueError, KeyError, AttributeError) as e:  # an unknown class or key of the config
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{config_file}: cannot build the LM it describes: {e}") from e
    return model.lm.eval()


def perplexity(lm: Any, token_ids: Sequence[Sequence[int]], vocab_size: int, batch_size: int = 64) -> Tuple[float, int]:
    """``(perplexity, tokens)`` of ESPnet LM ``lm`` (over ``vocab_size`` tokens) on token-id sequences, each
    scored with its end symbol (the last id), as ESPnet's LM task counts them."""
    import torch
    from espnet2.lm.espnet_model import ESPnetLanguageModel

    model = ESPnetLanguageModel(lm, vocab_size=vocab_size).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(token_ids), batch_size):
            batch = [torch.as_tensor(list(ids), dtype=torch.long) for ids in token_ids[start : start + batch_size]]
            lengths = torch.tensor([len(ids) for ids in batch])
            text = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True, padding_value=0)
            nll, x_lengths = model.nll(text, lengths)
            total += float(nll.sum())
            count += int(x_lengths.sum())
    return math.exp(total / max(count, 1)), count
