"""Student structures scaled to the teacher.

- ``shallow_wide`` (DistilHuBERT-like): 2 layers at the teacher's width, heads
  and FFN size; for HuBERT Base, 2 x 768 with FFN 3072.
- ``deep_thin`` (FitHuBERT-like): the teacher's depth at 0.625 of its width,
  40-dimensional attention heads and an FFN as wide as the layer; for HuBERT
  Base, 12 x 480 with FFN 480 and 12 heads.
- ``teacher``: the teacher's own structure, copied by ``init_from_teacher`` and pruned while distilled
  (``model_conf.prune_conf``, DPHuBERT).

Keys given in ``encoder_conf`` override the preset's values.
"""

from dataclasses import dataclass
from typing import Any, Dict

import torch

PRESETS = ("shallow_wide", "deep_thin", "teacher")
DEEP_THIN_WIDTH_RATIO = 0.625  # FitHuBERT: 480 / 768
DEEP_THIN_HEAD_DIM = 40  # FitHuBERT: 480 / 12 heads


@dataclass
class TeacherShape:
    """What a preset needs to know of the teacher."""

    num_layers: int
    width: int
    attention_heads: int
    ffn_dim: int
    pos_conv_kernel: int
    pos_conv_groups: int
    layer_norm_first: bool

    @classmethod
    def of(cls, model: torch.nn.Module) -> "TeacherShape":
        """Read the shape of a torchaudio ``Wav2Vec2Model``."""
        transformer = model.encoder.transformer
        layer = transformer.layers[0]
        pos_conv = transformer.pos_conv_embed
        return cls(
            num_layers=len(transformer.layers),
            width=pos_conv.embed_dim,
            attention_heads=layer.attention.num_heads,
            ffn_dim=layer.feed_forward.intermediate_dense.out_features,
            pos_conv_kernel=pos_conv.kernel_size,
            pos_conv_groups=pos_conv.conv.groups,
            layer_norm_first=bool(layer.layer_norm_first),  # pre-LN layers
        )


def _largest_divisor_at_most(value: int, limit: int) -> int:
    return max(d for d in range(1, limit + 1) if value % d == 0)


def preset_encoder_conf(name: str, teacher: TeacherShape) -> Dict[str, Any]:
    """The ``encoder_conf`` of a preset for this teacher."""
    common = dict(
        pos_conv_kernel=teacher.pos_conv_kernel,
        layer_norm_first=teacher.layer_norm_first,
    )
    if name == "shallow_wide":
        return dict(
            output_size=teacher.width,
            num_layers=min(2, teacher.num_layers),
            attention_heads=teacher.attention_heads,
            ffn_dim=teacher.ffn_dim,
            pos_conv_groups=teacher.pos_conv_groups,
            **common,
        )
    if name == "deep_thin":
        width = int(round(teacher.width * DEEP_THIN_WIDTH_RATIO / DEEP_THIN_HEAD_DIM)) * DEEP_THIN_HEAD_DIM
        width = max(width, DEEP_THIN_HEAD_DIM)
        return dict(
            output_size=width,
            num_layers=teacher.num_layers,
            attention_heads=width // DEEP_THIN_HEAD_DIM,
            ffn_dim=width,
            pos_conv_groups=_largest_divisor_at_most(width, teacher.pos_conv_groups),
            **common,
        )
    if name == "teacher":  # the teacher's own structure: the start of a pruned student (model_conf.prune_conf)
        return dict(
            output_size=teacher.width,
            num_layers=teacher.num_layers,
            attention_heads=teacher.attention_heads,
            ffn_dim=teacher.ffn_dim,
            pos_conv_groups=teacher.pos_conv_groups,
            **common,
        )
    raise ValueError(f"unknown student preset {name!r}; choose one of {PRESETS}")


def resolve_encoder_conf(conf: Dict[str, Any], teacher: TeacherShape) -> Dict[str, Any]:
    """Expand ``preset`` in an ``encoder_conf``; explicit keys win."""
    conf = dict(conf)
    name = conf.pop("preset", None)
    if name is None:
        return conf
    return {**preset_encoder_conf(name, teacher), **conf}
