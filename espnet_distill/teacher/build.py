"""The builder every teacher format shares: torchaudio's model from builder arguments and a state dict.

Each format's module maps its checkpoint onto the arguments of torchaudio's ``wav2vec2_model`` (HuBERT,
wav2vec 2.0 and data2vec-audio layers) or ``wavlm_model`` and its tensors onto their names;
:func:`build_teacher` builds that model with dropouts and layerdrop off, loads the state (every key and
shape checked), adds HuBERT's codeword head where the checkpoint has one and returns the frozen
:class:`~espnet_distill.teacher.hubert.HubertTeacher`.  Also here: what the formats share (the hint named
when a pickled file is refused, a config object read as a dict, old weight-norm names).
"""

import inspect
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torchaudio.models import wav2vec2_model, wavlm_model

from espnet_distill.teacher.data2vec import use_data2vec_positional_conv
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_state_into

PathLike = Union[str, Path]
WAV2VEC2_ARGS = list(inspect.signature(wav2vec2_model).parameters)
WAVLM_ARGS = list(inspect.signature(wavlm_model).parameters)
# What sets ``trust_checkpoint`` for a teacher, named when a file is refused.
TRUST_HINT = "trust_checkpoint: true in teacher_conf (check_teacher and distill_asr.sh: --trust_checkpoint true)"
INFERENCE_OVERRIDES = {  # dropouts are off in eval mode anyway; no layerdrop for a teacher
    "encoder_projection_dropout": 0.0,
    "encoder_attention_dropout": 0.0,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.0,
    "encoder_layer_drop": 0.0,
}


def weight_norm_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename old-style weight-norm keys (``weight_g``/``weight_v``) to parametrizations."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", key)
        renamed[key] = value
    return renamed


def as_dict(obj: Any) -> Dict[str, Any]:
    """A mapping, or an object's attributes (a Namespace, a config), as a plain dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    raise TypeError(type(obj).__name__)


def build_teacher(
    config: Mapping[str, Any],
    state: Mapping[str, torch.Tensor],
    path: PathLike,
    head: Optional[Tuple[Mapping[str, torch.Tensor], torch.Tensor]] = None,
    logit_temp: float = 0.1,
    family: str = "hubert",
    normalize_waveform: bool = False,
) -> HubertTeacher:
    """torchaudio's model of ``family`` (hubert, wav2vec2, wavlm, data2vec) from builder arguments and a state dict."""
    builder, names = (wavlm_model, WAVLM_ARGS) if family == "wavlm" else (wav2vec2_model, WAV2VEC2_ARGS)
    kwargs = {k: config[k] for k in names if k in config}
    kwargs.update(INFERENCE_OVERRIDES)
    kwargs.setdefault("aux_num_out", None)
    missing = [k for k in names if k not in kwargs]
    if missing:
        raise CheckpointError(f"{path}: configuration lacks {missing[0]!r}")
    model = builder(**kwargs)
    if family == "data2vec":
        state = use_data2vec_positional_conv(model, kwargs, int(config["data2vec_pos_conv_layers"]), state)
    load_state_into(model, weight_norm_keys(state), path)
    final_proj, label_embeddings = None, None
    if head is not None:
        proj_state, label_embeddings = head
        final_proj = torch.nn.Linear(proj_state["weight"].shape[1], proj_state["weight"].shape[0])
        if label_embeddings.shape[1] != final_proj.out_features:
            raise CheckpointError(
                f"{path}: codeword embeddings have dim {label_embeddings.shape[1]} but final_proj "
                f"outputs {final_proj.out_features} (several label sets are not supported)"
            )
        load_state_into(final_proj, proj_state, path)
    return HubertTeacher(model, final_proj, label_embeddings, logit_temp, normalize_waveform)
