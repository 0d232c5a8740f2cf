"""HuBERT's waveform CNN, run so that padding never changes a valid frame.

HuBERT Base's first convolution is followed by a GroupNorm with one group per
channel, which normalizes over *time*: zeros padded to the end of a short
utterance would change every frame of it.  :func:`conv_features` runs the
extractor's own convolutions on the padded batch but computes that
normalization over each utterance's valid frames only, so every valid frame
equals the utterance run alone, in one batched pass with no data-dependent
control flow (it exports to ONNX).  Later frames see only valid frames of the
layer below (the convolutions have no padding), so they are exact too.
"""

import ast
import re
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torchaudio.models.wav2vec2.components import FeatureExtractor

from espnet_distill import seams

ConvSpec = Union[str, Sequence[Sequence[int]]]
HUBERT_BASE_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


def parse_conv_layers(spec: str) -> List[Tuple[int, int, int]]:
    """Parse fairseq's ``conv_feature_layers``, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``.

    Only list literals, ``+`` and ``* <int>`` are accepted; nothing is evaluated.
    """
    layers: List[Tuple[int, int, int]] = []
    for term in spec.split("+"):
        match = re.fullmatch(r"\s*(\[.*\])\s*(?:\*\s*(\d+))?\s*", term)
        if match is None:
            raise ValueError(f"cannot parse conv_feature_layers term {term!r}")
        items = ast.literal_eval(match.group(1))
        layers += [tuple(int(v) for v in item) for item in items] * int(match.group(2) or 1)
    return layers


def conv_layer_list(spec: ConvSpec) -> List[Tuple[int, int, int]]:
    """``(channels, kernel, stride)`` triples from fairseq's string form or a list."""
    layers = parse_conv_layers(spec) if isinstance(spec, str) else [tuple(int(v) for v in item) for item in spec]
    if not layers or any(len(layer) != 3 or min(layer) < 1 for layer in layers):
        raise ValueError(f"conv_layers must be (channels, kernel, stride) triples, got {spec!r}")
    return layers


def build_extractor(conv_layers: ConvSpec, mode: str = "group_norm", bias: bool = False) -> FeatureExtractor:
    """torchaudio's wav2vec 2.0 / HuBERT feature extractor."""
    if mode not in ("group_norm", "layer_norm"):
        raise ValueError(f"extractor_mode must be group_norm or layer_norm, got {mode!r}")
    return seams.torchaudio_build_feature_extractor(mode, conv_layer_list(conv_layers), bias)


def extractor_layers(extractor: FeatureExtractor) -> List[Tuple[int, int, int]]:
    """The ``(channels, kernel, stride)`` triples of a built extractor."""
    return [
        (block.conv.out_channels, block.conv.kernel_size[0], block.conv.stride[0]) for block in extractor.conv_layers
    ]


def normalizes_over_time(extractor: FeatureExtractor) -> bool:
    """True for group-norm extractors, whose output depends on padding."""
    return any(isinstance(block.layer_norm, torch.nn.GroupNorm) for block in extractor.conv_layers)


def _tracing() -> bool:
    """True while torch.export / ONNX export traces: the graph must be the general (padded) one."""
    return torch.compiler.is_exporting() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def masked_group_norm(norm: torch.nn.GroupNorm, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``norm`` over the first ``lengths`` frames of each ``(channels, frames)`` item of ``x``; padding stays finite.

    A batch without padding takes PyTorch's own (fused) group norm.  With padding, the statistics are
    masked sums done as matrix products, and the normalization one fused multiply-add: about 5 passes
    over ``x`` instead of 8 elementwise ones (HuBERT Base's first layer holds 512 channels at 3,200
    frames a second).
    """
    batch, channels, frames = x.shape
    if not _tracing() and bool((lengths == frames).all()):
        return torch.nn.functional.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    groups = norm.num_groups
    grouped = x.reshape(batch, groups, channels // groups, frames)
    valid = (torch.arange(frames, device=x.device)[None, :] < lengths[:, None]).to(x.dtype)  # (batch, frames)
    column = valid[:, None, :, None]  # (batch, 1, frames, 1): a masked sum over time is a matrix product
    count = (valid.sum(-1) * (channels // groups)).clamp(min=1)[:, None, None, None]
    mean = torch.matmul(grouped, column).sum(-2, keepdim=True) / count
    centered = grouped - mean
    var = torch.matmul(centered * centered, column).sum(-2, keepdim=True) / count
    scale = torch.rsqrt(var + norm.eps).expand(batch, groups, channels // groups, 1).reshape(batch, channels, 1)
    centered = centered.reshape(batch, channels, frames)
    if not norm.affine:
        return centered * scale
    return torch.addcmul(norm.bias[None, :, None], centered, scale * norm.weight[None, :, None])


def conv_features(
    extractor: FeatureExtractor, waveforms: torch.Tensor, lengths: Optional[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``extractor`` on ``(batch, samples)``; returns ``(batch, frames, channels)`` and frame counts.

    The valid frames equal those of each utterance run alone.
    """
    batch, num_samples = waveforms.shape
    if lengths is None:
        lengths = torch.full((batch,), num_samples, dtype=torch.long, device=waveforms.device)
    x = waveforms.unsqueeze(1)
    for block in extractor.conv_layers:
        x = block.conv(x)
        lengths = torch.clamp(torch.div(lengths - block.kernel_size, block.stride, rounding_mode="floor") + 1, min=0)
        if isinstance(block.layer_norm, torch.nn.GroupNorm):
            x = masked_group_norm(block.layer_norm, x, lengths)
        elif block.layer_norm is not None:  # per frame: padding does not reach valid frames
            x = block.layer_norm(x)
        x = torch.nn.functional.gelu(x)
    return x.transpose(1, 2), lengths


def teacher_frontend_defaults(teacher) -> dict:
    """The CNN of ``teacher`` (a :class:`~espnet_distill.teacher.hubert.HubertTeacher`), as the
    ``frontend_conf`` values of ``wav_cnn``."""
    extractor = teacher.model.feature_extractor
    return {
        "conv_layers": [list(layer) for layer in extractor_layers(extractor)],
        "extractor_mode": "group_norm" if normalizes_over_time(extractor) else "layer_norm",
        "conv_bias": extractor.conv_layers[0].conv.bias is not None,
    }
