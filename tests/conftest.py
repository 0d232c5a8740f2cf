"""Shared fixtures and helpers: a tiny real corpus synthesized once per test session, a tiny teacher,
commands run in this process and their one error line, probes run in a fresh one, a checkpoint that would run
code."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest
import soundfile

from espnet_distill.data import mini_synth

REPO_ROOT = Path(__file__).resolve().parents[1]
# Shell scripts under test call `python`: make it this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def require_programs(*names: str) -> None:
    """Skip, saying so, when a program the test needs is not installed (tools/install.sh installs them)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/install.sh installs the Debian packages)")


@pytest.fixture(scope="session")
def sclite() -> None:
    """sclite (Debian's sctk) is installed, or the test is skipped saying so."""
    from espnet_distill.scoring.sclite import find_sclite

    try:
        find_sclite()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Dict[str, Path]:
    """The mini corpus at its tiny size: data dirs of train, train_10pct, dev, test (synthesized with
    espeak-ng and flite: skipped, saying so, without them)."""
    require_programs("espeak-ng", "flite")
    root = tmp_path_factory.mktemp("tiny_corpus")
    plan = mini_synth.plan_corpus(mini_synth.default_sentences(), size="tiny", seed=1)
    mini_synth.write_plan(plan, root / "plan")
    mini_synth.synthesize(root / "plan", root / "wav")
    mini_synth.write_data_dirs(root / "plan", root / "wav", root / "data", seed=1)
    return {"root": root, "data": root / "data", "wav": root / "wav", "plan": root / "plan"}


@pytest.fixture
def data_dir_copy(tiny_corpus, tmp_path) -> Path:
    """A writable copy of the tiny dev data dir (audio shared, read-only by convention)."""
    target = tmp_path / "dev"
    shutil.copytree(tiny_corpus["data"] / "dev", target)
    return target


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write int16 samples (1-D mono or 2-D frames x channels) to a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples, dtype=np.int16), rate, subtype="PCM_16")
    return path


@pytest.fixture
def restore_logging():
    """A command's main points the root logger at the captured stderr: put the handlers back afterwards
    (``pytestmark = pytest.mark.usefixtures("restore_logging")`` in a module that runs commands)."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:], logging.root.level = handlers, level


def run_main(main: Callable, capsys, *argv) -> Tuple[Any, str, str]:
    """A command's ``main`` run on ``argv`` in this process, as ``python -m`` runs it (``utils.cli.run``):
    (exit status, stdout, stderr)."""
    from espnet_distill.utils.cli import run

    with pytest.raises(SystemExit) as exit_:
        run(main, [str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def one_error(err: str, *parts) -> str:
    """stderr holds one error line, naming each of ``parts``, and no traceback; returns it."""
    errors = [line for line in err.splitlines() if "ERROR" in line or "error:" in line]
    assert len(errors) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for part in parts:
        assert str(part) in errors[0], (part, errors[0])
    return errors[0]


def python_json(code: str) -> Any:
    """The JSON that a fresh interpreter prints on its last line after running ``code`` (which must succeed):
    for what only a process of its own can tell (the test process has everything imported)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def touch_marker(path: str) -> None:
    """What a :class:`Payload` runs when unpickled: if any load did, the marker file exists."""
    Path(path).touch()


class Payload:
    """A hostile checkpoint's content: unpickled, it would create ``marker`` (:func:`touch_marker`)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return touch_marker, (str(self.marker),)


TINY_CONV = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2
# torchaudio's wav2vec2_model arguments of a tiny 3 x 64 post-LN HuBERT with a group-norm CNN, dropout off.
TINY_ENCODER = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=TINY_CONV,
    extractor_conv_bias=False,
    encoder_embed_dim=64,
    encoder_projection_dropout=0.0,
    encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4,
    encoder_num_layers=3,
    encoder_num_heads=4,
    encoder_attention_dropout=0.0,
    encoder_ff_interm_features=128,
    encoder_ff_interm_dropout=0.0,
    encoder_dropout=0.0,
    encoder_layer_norm_first=False,
    encoder_layer_drop=0.0,
)
# What hubert_pretrain_model takes besides: the masking and a 20-codeword head.
TINY_PRETRAIN_HEAD = dict(
    mask_prob=0.5,
    mask_selection="static",
    mask_other=0.0,
    mask_length=4,
    no_mask_overlap=False,
    mask_min_space=1,
    mask_channel_prob=0.0,
    mask_channel_selection="static",
    mask_channel_other=0.0,
    mask_channel_length=10,
    no_mask_channel_overlap=False,
    mask_channel_min_space=1,
    skip_masked=False,
    skip_nomask=False,
    num_classes=20,
    final_dim=16,
    feature_grad_mult=None,
)
TINY_TEACHER = {**TINY_ENCODER, **TINY_PRETRAIN_HEAD}


@pytest.fixture(scope="session")
def tiny_teacher_path(tmp_path_factory) -> Path:
    """A random 3 x 64 post-LN, group-norm HuBERT with a 20-codeword head, in the torchaudio teacher format."""
    import torch
    from torchaudio.models import hubert_pretrain_model

    torch.manual_seed(0)
    model = hubert_pretrain_model(**TINY_TEACHER)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save({"config": TINY_TEACHER, "model": model.state_dict()}, path)
    return path


def tiny_batch(tiny_corpus, count: int = 3, data_set: str = "train"):
    """The first ``count`` utterances of a tiny set: padded float waveforms in [-1, 1] and lengths."""
    import torch

    from espnet_distill.data.audio import read_audio
    from espnet_distill.data.kaldi_dir import read_kaldi_map

    waves = []
    for utt, spec in list(read_kaldi_map(tiny_corpus["data"] / data_set / "wav.scp").items())[:count]:
        samples, _ = read_audio(utt, spec)
        waves.append(torch.from_numpy(samples))
    lengths = torch.tensor([len(w) for w in waves])
    return torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths


# The tiny LM (shallow fusion): ESPnet's LM task on the tiny corpus's character list (the list the tiny
# fine-tunings use), trained once per session.
LM_CONFIG = """
lm: seq_rnn
lm_conf: {rnn_type: lstm, unit: 32, nlayers: 1}
batch_type: length
batch_bins: 400
optim: adam
optim_conf: {lr: 0.01}
num_workers: 0
best_model_criterion: [[valid, loss, min]]
keep_nbest_models: 1
"""


def train_lm(root: Path, train_text: Path, dev_text: Path, tokens: Path, out: Path, epochs: int = 3) -> str:
    """Train the tiny LM of ``LM_CONFIG`` with ``espnet_distill.bin.lm_train``; return its log."""
    from espnet_distill.recipe.lm_data import write_shapes
    from espnet_distill.text.tokens import Tokenizer, read_token_list

    tokenizer = Tokenizer(read_token_list(tokens), "char", None)
    write_shapes(train_text, root / "lm_shapes" / "train", tokenizer)
    write_shapes(dev_text, root / "lm_shapes" / "dev", tokenizer)
    (root / "lm.yaml").write_text(LM_CONFIG)
    cmd = [
        sys.executable,
        "-m",
        "espnet_distill.bin.lm_train",
        "--config",
        str(root / "lm.yaml"),
        "--token_list",
        str(tokens),
        "--token_type",
        "char",
        "--train_data_path_and_name_and_type",
        f"{train_text},text,text",
        "--train_shape_file",
        str(root / "lm_shapes" / "train"),
        "--valid_data_path_and_name_and_type",
        f"{dev_text},text,text",
        "--valid_shape_file",
        str(root / "lm_shapes" / "dev"),
        "--max_epoch",
        str(epochs),
        "--output_dir",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


@pytest.fixture(scope="session")
def tiny_lm(tiny_corpus, tmp_path_factory):
    """An LM trained for 3 epochs on the tiny corpus's text without its dev and test sentences, and its log."""
    from espnet_distill.recipe.lm_data import write_lm_text
    from espnet_distill.text.tokens import char_tokens, transcripts, write_token_list

    root = tmp_path_factory.mktemp("lm")
    data = tiny_corpus["data"]
    write_token_list(root / "tokens.txt", char_tokens(transcripts(data / "train" / "text")))
    write_lm_text(root / "lm_text", [], [data / "train" / "text"], [data / "dev" / "text", data / "test" / "text"])
    log = train_lm(root, root / "lm_text", data / "dev" / "text", root / "tokens.txt", root / "lm")
    return root / "lm", log


def lm_with_tokens(lm_dir: Path, out: Path, edit: Callable) -> Path:
    """A copy of the LM exp dir ``lm_dir`` at ``out`` whose config's token list is ``edit(token_list)``
    (the model file unchanged): an LM of other tokens."""
    import yaml

    config = yaml.safe_load((lm_dir / "config.yaml").read_text())
    config["token_list"] = edit(config["token_list"])
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(lm_dir / "valid.loss.ave.pth", out / "valid.loss.ave.pth")
    return out
