"""The inference forward of a fine-tuned model: waveform in, CTC log-probabilities out.

:class:`CTCInference` is what the ONNX export traces
(:mod:`espnet_distill.export.onnx`) and what the PyTorch backends run
(``transcribe``'s, the parity check's, ``benchmark_deploy``'s), so that the
exported graph and PyTorch compute one function.
"""

from typing import TYPE_CHECKING, Tuple

import torch

if TYPE_CHECKING:
    from espnet_distill.asr.model import CTCASRModel


class CTCInference(torch.nn.Module):
    """Front-end, encoder and CTC log-softmax of ``model`` (its modules, shared, not copied).

    ESPnet's ``encode`` slices its output by the longest length, a data-dependent
    step an exported graph cannot hold; the valid frames are the same.
    """

    def __init__(self, model: "CTCASRModel") -> None:
        super().__init__()
        self.frontend, self.encoder, self.ctc = model.frontend, model.encoder, model.ctc

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``speech`` ``(batch, samples)`` float in [-1, 1] at 16 kHz and its ``lengths``: ``(log_probs
        (batch, frames, vocab), frame_lengths (batch,))``."""
        feats, feat_lengths = self.frontend(speech, lengths)
        encoded, encoded_lengths, _ = self.encoder(feats, feat_lengths)
        return self.ctc.log_softmax(encoded), encoded_lengths
