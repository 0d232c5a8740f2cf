"""Loaders of HuBERT checkpoints in the formats real users have.

Each maps its checkpoint onto torchaudio's ``Wav2Vec2Model`` (and HuBERT's
codeword head where the checkpoint has one) and returns a :class:`HubertTeacher`.

- ``fairseq``: ``hubert_base_ls960.pt``-style files (``cfg`` or ``args``,
  ``model`` with ``final_proj`` and ``label_embs_concat``);
- ``huggingface``: a ``HubertModel`` directory (``config.json`` and
  ``model.safetensors`` or ``pytorch_model.bin``); it has no codeword head;
- ``torchaudio``: ``{"config": <builder kwargs>, "model": <state dict>}`` of
  ``wav2vec2_model`` or ``hubert_pretrain_model`` (what this project's HuBERT
  pretraining writes);
- ``espnet``: a checkpoint of ESPnet's HuBERT task (``encoder: torchaudio_hubert``)
  with the ``config.yaml`` of its experiment;
- ``untrained``: no checkpoint: HuBERT Base's structure (or fairseq-style
  overrides of it) with random weights and a random codeword head, for dry
  runs that build and size a paper-scale recipe's models without the real file.
"""

import inspect
import json
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import yaml
from torchaudio.models import hubert_pretrain_model, wav2vec2_model
from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict as fairseq_to_torchaudio

from espnet_distill.frontend.conv import parse_conv_layers
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, load_state_into, require_entry
from espnet_distill.utils.fileio import sha256_file

PathLike = Union[str, Path]
WAV2VEC2_ARGS = list(inspect.signature(wav2vec2_model).parameters)
PRETRAIN_ARGS = list(inspect.signature(hubert_pretrain_model).parameters)
# What sets ``trust_checkpoint`` for a teacher, named when a file is refused.
TRUST_HINT = "trust_checkpoint: true in teacher_conf (check_teacher and distill_asr.sh: --trust_checkpoint true)"
INFERENCE_OVERRIDES = {  # dropouts are off in eval mode anyway; no layerdrop for a teacher
    "encoder_projection_dropout": 0.0,
    "encoder_attention_dropout": 0.0,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.0,
    "encoder_layer_drop": 0.0,
}


def _weight_norm_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename old-style weight-norm keys (``weight_g``/``weight_v``) to parametrizations."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", key)
        renamed[key] = value
    return renamed


def _build(
    config: Mapping[str, Any],
    state: Mapping[str, torch.Tensor],
    path: PathLike,
    head: Optional[Tuple[Mapping[str, torch.Tensor], torch.Tensor]] = None,
    logit_temp: float = 0.1,
) -> HubertTeacher:
    kwargs = {k: config[k] for k in WAV2VEC2_ARGS if k in config}
    kwargs.update(INFERENCE_OVERRIDES)
    kwargs.setdefault("aux_num_out", None)
    missing = [k for k in WAV2VEC2_ARGS if k not in kwargs]
    if missing:
        raise CheckpointError(f"{path}: configuration lacks {missing[0]!r}")
    model = wav2vec2_model(**kwargs)
    load_state_into(model, _weight_norm_keys(state), path)
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
    return HubertTeacher(model, final_proj, label_embeddings, logit_temp)


def _as_dict(obj: Any) -> Dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    raise TypeError(type(obj).__name__)


# --- fairseq -------------------------------------------------------------


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


def load_fairseq(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """A fairseq HuBERT checkpoint (``hubert_base_ls960.pt`` layout)."""
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (a {type(checkpoint).__name__})")
    if checkpoint.get("cfg") is not None:
        model_cfg = _as_dict(require_entry(_as_dict(checkpoint["cfg"]), "model", f"{path} (cfg)"))
    elif checkpoint.get("args") is not None:
        model_cfg = _as_dict(checkpoint["args"])
    else:
        raise CheckpointError(f"{path}: checkpoint has neither 'cfg' nor 'args'")
    state = require_entry(checkpoint, "model", path)
    head = None
    if "final_proj.weight" in state and "label_embs_concat" in state:
        head = ({"weight": state["final_proj.weight"], "bias": state["final_proj.bias"]}, state["label_embs_concat"])
    try:
        converted = fairseq_to_torchaudio(state)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e
    converted.pop("label_embs_concat", None)
    return _build(fairseq_config(model_cfg), converted, path, head, float(model_cfg.get("logit_temp", 0.1)))


# --- Hugging Face --------------------------------------------------------


def huggingface_config(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """torchaudio builder arguments from a Hugging Face ``HubertConfig``."""
    return {
        "extractor_mode": "layer_norm" if cfg.get("feat_extract_norm", "group") == "layer" else "group_norm",
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


def _huggingface_key(key: str) -> Optional[str]:
    key = re.sub(r"^hubert\.", "", key)
    if key.startswith("masked_spec_embed"):
        return None
    if key.startswith("feature_projection."):
        return "encoder." + key
    if key.startswith("encoder."):
        return "encoder.transformer." + key[len("encoder.") :]
    return key


def load_huggingface(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """A Hugging Face ``HubertModel`` directory; it carries no codeword head.

    ``trust_checkpoint`` only matters for ``pytorch_model.bin`` (safetensors hold no code).
    """
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json (expected a Hugging Face model directory)")
    try:
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_file}: not valid JSON: {e}") from e
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
    try:
        config = huggingface_config(cfg)
    except KeyError as e:
        raise CheckpointError(f"{config_file}: missing key {e.args[0]!r}") from e
    converted = {}
    for key, value in state.items():
        new_key = _huggingface_key(key)
        if new_key is not None:
            converted[new_key] = value
    return _build(config, converted, weights)


# --- torchaudio and ESPnet -----------------------------------------------


def _pretrain_head(state: Mapping[str, torch.Tensor], prefix: str = "") -> Tuple[Dict[str, torch.Tensor], Optional[Tuple]]:
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
        body, head = _pretrain_head(state)
        return _build(config, body, path, head)
    return _build(config, state, path)


def load_espnet(path: PathLike, config: Optional[PathLike] = None, trust_checkpoint: bool = False) -> HubertTeacher:
    """A checkpoint of ESPnet's HuBERT task with its ``config.yaml``.

    ``config`` defaults to ``config.yaml`` next to the checkpoint.
    """
    path = Path(path)
    config_path = Path(config) if config is not None else path.parent / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{path}: no ESPnet config {config_path} (pass teacher_conf.config)")
    with open(config_path, encoding="utf-8") as f:
        espnet_config = yaml.safe_load(f) or {}
    if espnet_config.get("encoder") != "torchaudio_hubert":
        raise CheckpointError(
            f"{config_path}: encoder is {espnet_config.get('encoder')!r}; only 'torchaudio_hubert' is supported"
        )
    from espnet2.asr.encoder.hubert_encoder import TorchAudioHuBERTPretrainEncoder

    defaults = {
        name: p.default
        for name, p in inspect.signature(TorchAudioHuBERTPretrainEncoder.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    encoder_config = {**defaults, **(espnet_config.get("encoder_conf") or {})}
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not an ESPnet model checkpoint")
    body, head = _pretrain_head(state, prefix="encoder.hubert_pretrain_model.")
    if not body:
        raise CheckpointError(f"{path}: no 'encoder.hubert_pretrain_model.wav2vec2.*' keys")
    return _build(encoder_config, body, path, head)


# --- untrained ------------------------------------------------------------


def load_untrained(
    num_codewords: int = 504, codeword_dim: int = 256, seed: int = 0, **fairseq_overrides: Any
) -> HubertTeacher:
    """HuBERT Base's structure (``hubert_base_ls960.pt``: 504 codewords of 256) with random weights.

    ``fairseq_overrides`` are fairseq model config keys (``encoder_layers``,
    ``encoder_embed_dim``, ...), e.g. for HuBERT Large's shape.
    """
    config = fairseq_config(fairseq_overrides)
    kwargs = {**config, **INFERENCE_OVERRIDES, "aux_num_out": None}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = wav2vec2_model(**kwargs)
        final_proj = torch.nn.Linear(config["encoder_embed_dim"], codeword_dim)
        label_embeddings = torch.randn(num_codewords, codeword_dim)
    finally:
        torch.random.set_rng_state(generator_state)
    return HubertTeacher(model, final_proj, label_embeddings, 0.1)


LOADERS = {
    "fairseq": load_fairseq,
    "huggingface": load_huggingface,
    "torchaudio": load_torchaudio,
    "espnet": load_espnet,
    "untrained": load_untrained,
}


def load_teacher(name: str, **conf: Any) -> HubertTeacher:
    """Build the teacher chosen in YAML: ``teacher: <name>``, ``teacher_conf: {path: ...}``.

    ``teacher_conf.sha256`` (optional): the checkpoint file's expected SHA-256, checked before it is read.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown teacher format {name!r}; choose from {sorted(LOADERS)}")
    expected = conf.pop("sha256", None)
    if expected is not None:
        path = Path(conf.get("path", ""))
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file (teacher_conf.sha256 needs a file)")
        actual = sha256_file(path)
        if actual != str(expected).lower():
            raise CheckpointError(f"{path}: sha256 {actual} is not the expected {expected}; the file is not the released one")
    return LOADERS[name](**conf)
