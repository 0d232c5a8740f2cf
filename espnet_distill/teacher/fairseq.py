"""The ``fairseq`` teacher format: HuBERT and wav2vec 2.0 checkpoints of fairseq, pretrained or fine-tuned.

Read without fairseq: the safe loader stands in for the config classes a checkpoint references.  Owns
fairseq's model config as torchaudio's builder arguments (:func:`fairseq_config`, also the shape of
WavLM's original checkpoints and of the ``untrained`` teacher), fairseq's precedence of ``args`` over
``cfg``, a fine-tuned checkpoint's pretrained encoder, and HuBERT's codeword head (``final_proj``,
``label_embs_concat``).  Tensor names go through :mod:`espnet_distill.seams` (torchaudio's converter).
"""

import logging
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from espnet_distill.frontend.conv import parse_conv_layers
from espnet_distill.seams import fairseq_state_dict_to_torchaudio as fairseq_to_torchaudio
from espnet_distill.teacher.build import TRUST_HINT, PathLike, as_dict, build_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, require_entry

logger = logging.getLogger(__name__)


def fairseq_config(model_cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """torchaudio builder arguments from a fairseq HuBERT model config."""
    mode = model_cfg.get("extractor_mode", "default")
    return {
        "extractor_mode": "group_norm" if str(mode) == "default" else "layer_norm",
        "extractor_conv_layer_config": parse_conv_layers(
            model_cfg.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
        ),
        "extractor_conv_bias": bool(model_cfg.get("conv_bias", False)),
        "encoder_embed_dim": int(model_cfg.get("encoder_embed_dim", 768)),
        "encoder_pos_conv_kernel": int(model_cfg.get("conv_pos", 128)),
        "encoder_pos_conv_groups": int(model_cfg.get("conv_pos_groups", 16)),
        "encoder_num_layers": int(model_cfg.get("encoder_layers", 12)),
        "encoder_num_heads": int(model_cfg.get("encoder_attention_heads", 12)),
        "encoder_ff_interm_features": int(model_cfg.get("encoder_ffn_embed_dim", 3072)),
        "encoder_layer_norm_first": bool(model_cfg.get("layer_norm_first", False)),
    }


FAIRSEQ_FAMILIES = {"hubert": "hubert", "wav2vec2": "wav2vec2"}
FAIRSEQ_FINE_TUNED = ("wav2vec_ctc", "hubert_ctc", "wav2vec_seq2seq", "hubert_seq2seq")
FAIRSEQ_MODULES = ("fairseq.", "examples.")  # classes a fairseq checkpoint may reference (config dataclasses, enums)


def _fairseq_model_config(checkpoint: Mapping[str, Any], path: PathLike) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The model and task configs, with fairseq's precedence: ``args`` (a Namespace) over ``cfg``."""
    if checkpoint.get("args") is not None:
        args = as_dict(checkpoint["args"])
        return args, args  # one flat namespace holds the model's and the task's settings
    if checkpoint.get("cfg") is not None:
        cfg = as_dict(checkpoint["cfg"])
        task = cfg.get("task")
        return as_dict(require_entry(cfg, "model", f"{path} (cfg)")), as_dict(task) if task is not None else {}
    raise CheckpointError(f"{path}: checkpoint has neither 'args' nor 'cfg'")


def load_fairseq(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """A fairseq HuBERT or wav2vec 2.0 checkpoint, pretrained or fine-tuned.

    Layouts: ``args`` (a Namespace, preferred when set, as fairseq does) or
    ``cfg`` (a dict or an OmegaConf ``DictConfig``; fairseq's config classes it
    references are stood in for, never imported); ``task_state`` and any extra
    state are ignored.  A fine-tuned checkpoint (``w2v_encoder.*`` keys) gives
    its pretrained encoder; its CTC projection is dropped and the log says so.
    The task's ``normalize`` (wav2vec 2.0 Large) is honoured.
    """
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT, stand_in_modules=FAIRSEQ_MODULES)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (a {type(checkpoint).__name__})")
    model_cfg, task_cfg = _fairseq_model_config(checkpoint, path)
    state = dict(require_entry(checkpoint, "model", path))
    name = str(model_cfg.get("_name") or model_cfg.get("arch") or "hubert")
    if name in FAIRSEQ_FINE_TUNED or any(k.startswith("w2v_encoder.") for k in state):
        model_cfg, task_cfg, state = _fairseq_pretrained_encoder(path, name, model_cfg, task_cfg, state)
        name = str(model_cfg.get("_name") or model_cfg.get("arch") or "wav2vec2")
    family = next((f for prefix, f in FAIRSEQ_FAMILIES.items() if name.startswith(prefix)), None)
    if family is None:
        raise CheckpointError(
            f"{path}: fairseq model {name!r} is not supported (hubert, wav2vec2 and their fine-tuned forms)"
        )
    converted, head = _fairseq_torchaudio_state(state, path)
    normalize = bool(task_cfg.get("normalize", model_cfg.get("normalize", False)))
    return build_teacher(
        fairseq_config(model_cfg),
        converted,
        path,
        head,
        float(model_cfg.get("logit_temp", 0.1)),
        family=family,
        normalize_waveform=normalize,
    )


def _fairseq_pretrained_encoder(
    path: PathLike, name: str, model_cfg: Dict[str, Any], task_cfg: Dict[str, Any], state: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, torch.Tensor]]:
    """A fine-tuned checkpoint's pretrained encoder: its model and task configs and its state (the rest dropped)."""
    w2v_args = model_cfg.get("w2v_args")
    if w2v_args is None:
        raise CheckpointError(f"{path}: a fine-tuned checkpoint without w2v_args (the pretrained model's config)")
    inner = as_dict(w2v_args)
    if inner.get("model") is not None:  # a cfg of the pretraining run
        task_cfg = {**as_dict(inner.get("task") or {}), **{k: v for k, v in task_cfg.items() if k == "normalize"}}
        inner = as_dict(inner["model"])
    dropped = [k for k in state if not k.startswith("w2v_encoder.w2v_model.")]
    state = {k[len("w2v_encoder.w2v_model.") :]: v for k, v in state.items() if k.startswith("w2v_encoder.w2v_model.")}
    if dropped:
        logger.info(
            "%s: fine-tuned %s: dropped %s (%d tensors); the teacher is the pretrained encoder",
            path,
            name,
            dropped[0],
            len(dropped),
        )
    return inner, task_cfg, state


def _fairseq_torchaudio_state(
    state: Mapping[str, torch.Tensor], path: PathLike
) -> Tuple[Dict[str, torch.Tensor], Optional[Tuple[Dict[str, torch.Tensor], torch.Tensor]]]:
    """torchaudio names of a fairseq encoder's tensors (without the auxiliary ones), and HuBERT's codeword head."""
    head = None
    if "final_proj.weight" in state and "label_embs_concat" in state:
        head = ({"weight": state["final_proj.weight"], "bias": state["final_proj.bias"]}, state["label_embs_concat"])
    try:
        converted = fairseq_to_torchaudio(state)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e
    converted.pop("label_embs_concat", None)
    converted = {k: v for k, v in converted.items() if not k.startswith("aux.")}
    return converted, head
