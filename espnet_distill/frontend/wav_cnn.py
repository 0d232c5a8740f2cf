"""``frontend: wav_cnn``: HuBERT's convolutional waveform feature extractor.

The CNN (channels, kernels and strides configurable, fairseq's string form
accepted) is followed by HuBERT's feature projection (LayerNorm, Linear to the
encoder width, dropout), so the output is the encoder's input, 20 ms per frame
with HuBERT's strides.
"""

import logging
from typing import Optional, Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torchaudio.models.wav2vec2.components import FeatureProjection

from espnet_distill.frontend.conv import HUBERT_BASE_CONV, ConvSpec, build_extractor, conv_features, conv_layer_list

logger = logging.getLogger(__name__)


class WavCNNFrontend(AbsFrontend):
    """Waveform CNN + projection, as in HuBERT; padding-invariant (see :mod:`.conv`).

    Args:
        conv_layers: ``(channels, kernel, stride)`` per layer, or fairseq's string.
        extractor_mode: ``group_norm`` (HuBERT Base) or ``layer_norm``.
        conv_bias: bias in the convolutions.
        output_dim: width of the projection (the encoder's width).
        dropout: dropout after the projection.
    """

    def __init__(
        self,
        conv_layers: ConvSpec = HUBERT_BASE_CONV,
        extractor_mode: str = "group_norm",
        conv_bias: bool = False,
        output_dim: int = 768,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.conv_layers = conv_layer_list(conv_layers)
        self.extractor = build_extractor(self.conv_layers, extractor_mode, conv_bias)
        self.projection = FeatureProjection(self.conv_layers[-1][0], output_dim, dropout)
        self._output_dim = output_dim

    def output_size(self) -> int:
        return self._output_dim

    @property
    def frame_shift(self) -> int:
        """Samples per output frame (320 for HuBERT's strides)."""
        shift = 1
        for _, _, stride in self.conv_layers:
            shift *= stride
        return shift

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame (400 for HuBERT's CNN)."""
        field, shift = 1, 1
        for _, kernel, stride in self.conv_layers:
            field += (kernel - 1) * shift
            shift *= stride
        return field

    def forward(self, input: torch.Tensor, input_lengths: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` waveforms in [-1, 1] to ``(batch, frames, output_dim)`` and frame counts."""
        features, lengths = conv_features(self.extractor, input, input_lengths)
        return self.projection(features), lengths

    def init_from_teacher(self, teacher_model: torch.nn.Module) -> None:
        """Copy a torchaudio ``Wav2Vec2Model``'s CNN, and its projection where the shapes agree."""
        try:
            self.extractor.load_state_dict(teacher_model.feature_extractor.state_dict())
        except RuntimeError as e:
            raise ValueError(f"frontend_conf does not match the teacher's CNN, cannot init_from_teacher: {e}") from e
        projection = teacher_model.encoder.feature_projection
        if projection.projection.weight.shape == self.projection.projection.weight.shape:
            self.projection.load_state_dict(projection.state_dict())
            logger.info("wav_cnn front-end: CNN and projection initialised from the teacher")
        else:
            logger.info(
                "wav_cnn front-end: CNN initialised from the teacher; projection %s is new (teacher's is %s)",
                tuple(self.projection.projection.weight.shape),
                tuple(projection.projection.weight.shape),
            )
