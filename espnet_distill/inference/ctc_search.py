"""CTC search, shared by every way of decoding: the greedy collapse and ESPnet's CTC prefix beam search.

Data-dir decoding (:mod:`espnet_distill.inference.decode`, on encoder output),
``transcribe`` (on the log-probabilities of either backend) and the ONNX
parity check all decode through this module, so that the same scores give the
same text everywhere.

Importing it costs numpy only: the beam search imports torch and ESPnet when it
is built (an ONNX Runtime greedy transcription needs neither).
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from espnet_distill.text.tokens import SOS_EOS, Tokenizer

if TYPE_CHECKING:
    import torch

BLANK = 0  # the CTC blank's id: the first entry of every token list here


def collapse(best_path: Sequence[int]) -> List[int]:
    """The labels of a frame-wise best path: repeats merged, then blanks removed."""
    return [t for i, t in enumerate(best_path) if t != BLANK and (i == 0 or t != best_path[i - 1])]


def greedy_ids(log_probs: np.ndarray, length: Optional[int] = None) -> List[int]:
    """Greedy CTC on ``(frames, vocab)`` scores: the best token per frame (of the first ``length``), collapsed."""
    return collapse(log_probs[:length].argmax(-1).tolist())


def beam_width(beam_size: int, vocab_size: int) -> int:
    """The beam actually searched: ``min(beam_size, vocab_size - 1)``.

    ESPnet's search keeps the ``beam_size`` best extensions of its hypotheses, and
    at the first step there is one hypothesis with ``vocab_size`` extensions
    (``torch.topk`` fails on more).  One of them is the blank, which CTC prefix
    scoring rules out (its score is ESPnet's ``logzero``), so ``vocab_size - 1``
    already holds every extension that can win: a wider beam searches nothing more.

    ``lm`` is an ESPnet LM (``AbsLM``, e.g. :func:`espnet_distill.inference.lm.load_lm`'s)
    on the same token list, added to each hypothesis's score with ``lm_weight``:
    ``log p_ctc(y|x) + lm_weight * log p_lm(y)``, the end symbol's LM score
    included.  This is the search ESPnet's ``Speech2Text`` runs with
    ``ctc_weight 1.0`` and ``lm_weight``: every token scored by both (no
    pre-beam).  Weight 0 leaves the LM out (ESPnet's search drops a scorer of
    weight 0), so it is plain CTC prefix beam search.
    """
    return min(beam_size, vocab_size - 1)


def ctc_beam_search(
    ctc: Any, token_list: Sequence[str], beam_size: int, lm: Any = None, lm_weight: float = 0.0
) -> "torch.nn.Module":
    """ESPnet's ``BatchBeamSearch`` with CTC prefix scoring (weight 1) and, with ``lm``, shallow fusion, in eval mode.

    ``ctc`` is what ESPnet's ``CTCPrefixScorer`` scores with: an object whose
    ``log_softmax`` maps the search's input ``x`` to log-probabilities (ESPnet's
    CTC module on encoder output, or :class:`Precomputed`).  ``token_list`` must
    hold ``<sos/eos>``, the search's start and end symbol.  The beam is
    :func:`beam_width`.  Run it with :func:`beam_ids`.
    """
    from espnet.nets.batch_beam_search import BatchBeamSearch
    from espnet.nets.scorers.ctc import CTCPrefixScorer

    token_list = list(token_list)
    eos = token_list.index(SOS_EOS)
    scorers: Dict[str, Any] = {"ctc": CTCPrefixScorer(ctc=ctc, eos=eos)}
    weights = {"ctc": 1.0}
    if lm is not None and lm_weight != 0:
        scorers["lm"] = lm
        weights["lm"] = float(lm_weight)
    return BatchBeamSearch(
        scorers=scorers,
        weights=weights,
        beam_size=beam_width(beam_size, len(token_list)),
        vocab_size=len(token_list),
        sos=eos,
        eos=eos,
        token_list=token_list,
        pre_beam_score_key=None,
    ).eval()


def beam_ids(search: "torch.nn.Module", x: "torch.Tensor") -> List[int]:
    """The labels of the best hypothesis of ``search`` (from :func:`ctc_beam_search`) on ``x`` ``(frames, dim)``,
    without its start and end symbols; the search may be as long as ``x`` (``maxlenratio`` 0)."""
    import torch

    with torch.no_grad():
        hyps = search(x=x, maxlenratio=0.0, minlenratio=0.0)
    return [int(t) for t in hyps[0].yseq[1:-1].tolist()]


class Precomputed:
    """Stands in for ESPnet's CTC module when the search's input is already log-probabilities."""

    def log_softmax(self, x: "torch.Tensor") -> "torch.Tensor":
        return x


def decode_log_probs(
    log_probs: np.ndarray, tokenizer: Tokenizer, beam_size: int = 1, lm: Any = None, lm_weight: float = 0.0
) -> str:
    """The text of ``(frames, vocab)`` CTC log-probabilities: greedy (``beam_size`` 1), else the prefix beam
    search, fused with ``lm`` at ``lm_weight`` when given (see :func:`ctc_beam_search`)."""
    if beam_size <= 1:
        if lm is not None and lm_weight != 0:
            raise ValueError("shallow fusion with an LM needs the beam search: give a beam size above 1")
        return tokenizer.decode(greedy_ids(log_probs))
    import torch

    search = ctc_beam_search(Precomputed(), tokenizer.token_list, beam_size, lm, lm_weight)
    return tokenizer.decode(beam_ids(search, torch.from_numpy(log_probs)))
