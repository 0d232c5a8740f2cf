"""The ``torchaudio`` teacher format: ``{"config": <builder kwargs>, "model": <state dict>}``.

The builder arguments and state of torchaudio's ``wav2vec2_model`` or ``hubert_pretrain_model``: what this
project's HuBERT pretraining writes (:mod:`espnet_distill.make_teacher.pretrain`) and the released teacher
(``egs/mini_synth/asr1/pretrained/hubert_mini.pt``) is.  Owns the split of a ``HuBERTPretrainModel`` state
into the model and HuBERT's codeword head (:func:`pretrain_head`, ESPnet's checkpoints hold it too).
"""

from typing import Dict, Mapping, Optional, Tuple

import torch

from espnet_distill.teacher.build import TRUST_HINT, PathLike, build_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import load_checkpoint, require_entry


def pretrain_head(
    state: Mapping[str, torch.Tensor], prefix: str = ""
) -> Tuple[Dict[str, torch.Tensor], Optional[Tuple]]:
    """Split a ``HuBERTPretrainModel`` state into Wav2Vec2Model keys and the codeword head."""
    body = {k[len(prefix + "wav2vec2.") :]: v for k, v in state.items() if k.startswith(prefix + "wav2vec2.")}
    proj = {n: state.get(f"{prefix}logit_generator.final_proj.{n}") for n in ("weight", "bias")}
    embeddings = state.get(f"{prefix}logit_generator.label_embeddings")
    head = (proj, embeddings) if embeddings is not None and proj["weight"] is not None else None
    return body, head


def load_torchaudio(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """``{"config": ..., "model": ...}`` of torchaudio's wav2vec2/HuBERT builders."""
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT)
    config = require_entry(checkpoint, "config", path)
    state = require_entry(checkpoint, "model", path)
    if any(k.startswith("wav2vec2.") for k in state):
        body, head = pretrain_head(state)
        return build_teacher(config, body, path, head)
    return build_teacher(config, state, path)
