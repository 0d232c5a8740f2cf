"""The ``huggingface`` teacher format: a transformers model directory of HuBERT, wav2vec 2.0, WavLM or
data2vec-audio (``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``).

Owns ``config.json`` as torchaudio's builder arguments (:func:`huggingface_config`: every field that changes
the backbone's computation mapped, or refused by name), the backbone's tensor names (heads of ``*ForCTC``
and pretraining models dropped, WavLM's attention packed by :mod:`~espnet_distill.teacher.wavlm`) and
``preprocessor_config.json``'s ``do_normalize``.  No directory carries HuBERT's codeword head.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import torch

from espnet_distill.teacher.build import TRUST_HINT, PathLike, build_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.teacher.wavlm import pack_wavlm_attention
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)

# model_type of config.json -> (family, the backbone's key prefix in *For* models)
HF_MODEL_TYPES = {
    "hubert": ("hubert", "hubert."),
    "wav2vec2": ("wav2vec2", "wav2vec2."),
    "wavlm": ("wavlm", "wavlm."),
    "data2vec-audio": ("data2vec", "data2vec_audio."),
}
# Config fields that change what the backbone computes, with the only value implemented.
HF_FIXED_FIELDS = {
    "hidden_act": "gelu",
    "feat_extract_activation": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_proj_layer_norm": True,
    "conv_pos_batch_norm": False,
    "add_adapter": False,
}
# Keys outside the backbone: heads of *ForCTC / *ForPreTraining / *ForSequenceClassification models.
HF_HEAD_PREFIXES = (
    "lm_head.",
    "project_hid.",
    "project_q.",
    "quantizer.",
    "projector.",
    "classifier.",
    "dropout_features.",
)


def huggingface_config(cfg: Mapping[str, Any], source: PathLike = "config.json") -> Dict[str, Any]:
    """torchaudio builder arguments from a Hugging Face HuBERT / wav2vec 2.0 / WavLM / data2vec-audio config.

    Every field that changes the backbone's computation is either mapped or, at
    a value torchaudio's modules do not compute, refused by name.
    """
    for field, supported in HF_FIXED_FIELDS.items():
        value = cfg.get(field, supported)
        if value != supported and not (
            isinstance(supported, float) and isinstance(value, (int, float)) and abs(value - supported) < 1e-12
        ):
            raise CheckpointError(
                f"{source}: {field} = {value!r} is not supported (only {supported!r}); the model would compute something else"
            )
    norm = cfg.get("feat_extract_norm", "group")
    if norm not in ("group", "layer"):
        raise CheckpointError(f"{source}: feat_extract_norm = {norm!r} is not supported (group or layer)")
    config = {
        "extractor_mode": f"{norm}_norm",
        "extractor_conv_layer_config": list(zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"])),
        "extractor_conv_bias": bool(cfg.get("conv_bias", False)),
        "encoder_embed_dim": int(cfg["hidden_size"]),
        "encoder_pos_conv_kernel": int(cfg["num_conv_pos_embeddings"]),
        "encoder_pos_conv_groups": int(cfg["num_conv_pos_embedding_groups"]),
        "encoder_num_layers": int(cfg["num_hidden_layers"]),
        "encoder_num_heads": int(cfg["num_attention_heads"]),
        "encoder_ff_interm_features": int(cfg["intermediate_size"]),
        "encoder_layer_norm_first": bool(cfg.get("do_stable_layer_norm", False)),
    }
    if cfg.get("model_type") == "wavlm":
        config.update(encoder_num_buckets=int(cfg["num_buckets"]), encoder_max_distance=int(cfg["max_bucket_distance"]))
    if cfg.get("model_type") == "data2vec-audio":
        # data2vec's positional embedding: num_conv_pos_embeddings conv layers of conv_pos_kernel_size.
        # Its CNN has a LayerNorm after every convolution whatever feat_extract_norm says.
        config.update(
            data2vec_pos_conv_layers=int(cfg["num_conv_pos_embeddings"]),
            encoder_pos_conv_kernel=int(cfg["conv_pos_kernel_size"]),
            extractor_mode="layer_norm",
        )
    return config


def _huggingface_state(
    state: Mapping[str, torch.Tensor], family: str, prefix: str, num_layers: int
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """torchaudio names of a Hugging Face backbone's tensors, and the head keys left out."""
    converted, dropped = {}, []
    for key, value in state.items():
        if key.startswith(prefix):
            key = key[len(prefix) :]
        elif key.startswith(HF_HEAD_PREFIXES):
            dropped.append(key)
            continue
        if key.startswith("masked_spec_embed"):
            continue
        if key.startswith("feature_projection."):
            key = "encoder." + key
        elif key.startswith("encoder."):
            key = "encoder.transformer." + key[len("encoder.") :]
        converted[key] = value
    if family == "wavlm":
        pack_wavlm_attention(converted, num_layers)
    return converted, dropped


def load_huggingface(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """A Hugging Face model directory of HuBERT, wav2vec 2.0, WavLM or data2vec-audio.

    Base models (``HubertModel``, ``Wav2Vec2Model``, ``WavLMModel``,
    ``Data2VecAudioModel``) and fine-tuned or pretraining ones
    (``*ForCTC``, ``Wav2Vec2ForPreTraining``): their heads are dropped, and the
    log says so.  None carries HuBERT's codeword head; the KL loss then needs a
    k-means codebook (``teacher_codebook``).  ``preprocessor_config.json``'s
    ``do_normalize`` (wav2vec 2.0 Large, WavLM Large) is honoured.
    ``trust_checkpoint`` only matters for ``pytorch_model.bin`` (safetensors hold no code).
    """
    path = Path(path)
    config_file, cfg = _huggingface_config_json(path)
    model_type = _huggingface_model_type(cfg, config_file)
    family, prefix = HF_MODEL_TYPES[model_type]
    weights, state = _huggingface_weights(path, trust_checkpoint)
    try:
        config = huggingface_config(cfg, config_file)
    except KeyError as e:
        raise CheckpointError(f"{config_file}: missing key {e.args[0]!r}") from e
    converted, dropped = _huggingface_state(state, family, prefix, config["encoder_num_layers"])
    if dropped:
        logger.info(
            "%s: dropped the %s head (%d tensors: %s, ...); the teacher is the backbone",
            weights,
            (cfg.get("architectures") or [model_type])[0],
            len(dropped),
            dropped[0],
        )
    normalize = _huggingface_do_normalize(path)
    return build_teacher(config, converted, weights, family=family, normalize_waveform=normalize)


def _huggingface_config_json(path: Path) -> Tuple[Path, Dict[str, Any]]:
    """The model directory's ``config.json``: its path and contents."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json (expected a Hugging Face model directory)")
    try:
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_file}: not valid JSON: {e}") from e
    return config_file, cfg


def _huggingface_model_type(cfg: Mapping[str, Any], config_file: Path) -> str:
    """The config's ``model_type`` (else guessed from its architectures), refused unless one of :data:`HF_MODEL_TYPES`."""
    model_type = cfg.get("model_type")
    if model_type is None:  # hand-written configs: the class name says it, else HuBERT (this loader's first format)
        architecture = str((cfg.get("architectures") or ["HubertModel"])[0]).lower()
        model_type = next((t for t in HF_MODEL_TYPES if architecture.startswith(t.replace("-", ""))), architecture)
        logger.warning("%s: no model_type; taken as %r from its architectures", config_file, model_type)
    if model_type not in HF_MODEL_TYPES:
        raise CheckpointError(
            f"{config_file}: model_type {model_type!r} (architectures {cfg.get('architectures')}) is not supported; "
            f"supported: {', '.join(sorted(HF_MODEL_TYPES))}"
        )
    return model_type


def _huggingface_weights(path: Path, trust_checkpoint: bool) -> Tuple[Path, Mapping[str, torch.Tensor]]:
    """The weights file of the model directory (``model.safetensors``, else ``pytorch_model.bin``) and its state."""
    if (path / "model.safetensors").is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        weights = path / "model.safetensors"
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{weights}: cannot read weights (truncated or corrupt?): {e}") from e
    elif (path / "pytorch_model.bin").is_file():
        weights = path / "pytorch_model.bin"
        state = load_checkpoint(weights, trust=trust_checkpoint, trust_hint=TRUST_HINT)
    else:
        raise CheckpointError(f"{path}: no model.safetensors or pytorch_model.bin")
    return weights, state


def _huggingface_do_normalize(path: Path) -> bool:
    """``do_normalize`` of the directory's ``preprocessor_config.json`` (False without one)."""
    preprocessor = path / "preprocessor_config.json"
    if not preprocessor.is_file():
        return False
    try:
        return bool(json.loads(preprocessor.read_text(encoding="utf-8")).get("do_normalize", False))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{preprocessor}: not valid JSON: {e}") from e
