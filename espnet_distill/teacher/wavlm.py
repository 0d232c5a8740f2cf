"""The ``wavlm`` teacher format: Microsoft's original WavLM checkpoints (``WavLM-Base+.pt``: ``cfg``, ``model``).

Owns WavLM's layout on torchaudio's ``wavlm_model``: the gated relative position bias's names
(:func:`wavlm_key`; the other names are fairseq's, through :mod:`espnet_distill.seams`) and the separate
q/k/v projections packed into one ``in_proj`` (:func:`pack_wavlm_attention`, which Hugging Face's WavLM
directories need too).  The model config is fairseq's (:func:`~espnet_distill.teacher.fairseq.fairseq_config`).
"""

import re
from typing import Dict, Optional

import torch

from espnet_distill.seams import fairseq_key_to_torchaudio as fairseq_key
from espnet_distill.teacher.build import TRUST_HINT, PathLike, as_dict, build_teacher
from espnet_distill.teacher.fairseq import FAIRSEQ_MODULES, fairseq_config
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, require_entry

WAVLM_ATTENTION_KEYS = {
    "grep_linear.": "gru_rel_pos_linear.",
    "grep_a": "gru_rel_pos_const",
    "relative_attention_bias.": "rel_attn_embed.",
}


def wavlm_key(key: str) -> Optional[str]:
    """Microsoft's WavLM names -> torchaudio's; the rest are fairseq's (q/k/v stay separate, packed afterwards)."""
    match = re.match(r"^encoder\.layers\.(\d+)\.self_attn\.(grep_linear\.|grep_a$|relative_attention_bias\.)(.*)$", key)
    if match:
        layer, name, rest = match.groups()
        return f"encoder.transformer.layers.{layer}.attention.{WAVLM_ATTENTION_KEYS[name]}{rest}"
    return fairseq_key(key)


def pack_wavlm_attention(state: Dict[str, torch.Tensor], num_layers: int) -> None:
    """WavLM's separate q/k/v projections -> the packed ``in_proj`` of torchaudio's ``torch.nn.MultiheadAttention``."""
    for i in range(num_layers):
        base = f"encoder.transformer.layers.{i}.attention."
        for kind in ("weight", "bias"):
            parts = [state.pop(f"{base}{n}_proj.{kind}", None) for n in ("q", "k", "v")]
            if all(p is not None for p in parts):
                state[f"{base}attention.in_proj_{kind}"] = torch.cat(parts)
            out = state.pop(f"{base}out_proj.{kind}", None)
            if out is not None:
                state[f"{base}attention.out_proj.{kind}"] = out


def load_wavlm(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """Microsoft's original WavLM checkpoint (``WavLM-Base+.pt``: ``cfg``, a plain dict, and ``model``)."""
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT, stand_in_modules=FAIRSEQ_MODULES)
    cfg = as_dict(require_entry(checkpoint, "cfg", path))
    state = require_entry(checkpoint, "model", path)
    if not cfg.get("relative_position_embedding", True) or not cfg.get("gru_rel_pos", True):
        raise CheckpointError(f"{path}: WavLM without relative position embedding or its gating is not supported")
    converted: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        try:
            new_key = wavlm_key(key)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from e
        if new_key is not None:
            converted[new_key] = value
    pack_wavlm_attention(converted, int(cfg.get("encoder_layers", 12)))
    config = {
        **fairseq_config(cfg),
        "encoder_num_buckets": int(cfg.get("num_buckets", 320)),
        "encoder_max_distance": int(cfg.get("max_distance", 800)),
    }
    return build_teacher(config, converted, path, family="wavlm", normalize_waveform=bool(cfg.get("normalize", False)))
