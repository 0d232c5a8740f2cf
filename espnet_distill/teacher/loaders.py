"""Loaders of self-supervised teachers in the formats real users have.

Each maps its checkpoint onto torchaudio's ``Wav2Vec2Model`` (HuBERT,
wav2vec 2.0 and data2vec-audio layers, or WavLM's) and HuBERT's codeword head
where the checkpoint has one, and returns a :class:`HubertTeacher`.

- ``fairseq``: HuBERT and wav2vec 2.0 files, pretrained or fine-tuned
  (``args`` over ``cfg`` as fairseq reads them; ``model``; HuBERT's
  ``final_proj`` and ``label_embs_concat``);
- ``huggingface``: a ``HubertModel``, ``Wav2Vec2Model``, ``WavLMModel`` or
  ``Data2VecAudioModel`` directory, or its ``*ForCTC`` (``config.json`` and
  ``model.safetensors`` or ``pytorch_model.bin``); no codeword head;
- ``wavlm``: Microsoft's original WavLM checkpoints (``cfg``, ``model``);
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
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
import yaml
from torchaudio.models import wav2vec2_model, wavlm_model

from espnet_distill.frontend.conv import parse_conv_layers
from espnet_distill.seams import fairseq_key_to_torchaudio as fairseq_key
from espnet_distill.seams import fairseq_state_dict_to_torchaudio as fairseq_to_torchaudio
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, load_state_into, require_entry
from espnet_distill.utils.fileio import sha256_file

logger = logging.getLogger(__name__)

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


def _weight_norm_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename old-style weight-norm keys (``weight_g``/``weight_v``) to parametrizations."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", key)
        renamed[key] = value
    return renamed


class Data2VecPositionalConv(torch.nn.Module):
    """data2vec-audio's positional embedding: a stack of (grouped conv, LayerNorm without affine, GELU).

    Takes and returns ``(batch, frames, dim)``, like torchaudio's
    ``ConvolutionalPositionalEmbedding`` it replaces in the Transformer.
    """

    def __init__(self, embed_dim: int, kernel_size: int, groups: int, num_layers: int) -> None:
        super().__init__()
        self.embed_dim, self.kernel_size = embed_dim, kernel_size
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=groups)
            for _ in range(num_layers)
        )

    @property
    def conv(self) -> torch.nn.Conv1d:
        """The first convolution (what TeacherShape reads: its groups)."""
        return self.convs[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
            if self.kernel_size % 2 == 0:
                x = x[..., :-1]
            x = F.gelu(F.layer_norm(x.transpose(1, 2), (self.embed_dim,)).transpose(1, 2))
        return x.transpose(1, 2)


def _data2vec_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``pos_conv_embed.layers.<i>.conv.*`` (Hugging Face) -> ``pos_conv_embed.convs.<i>.*``."""
    return {
        re.sub(r"pos_conv_embed\.layers\.(\d+)\.conv\.", r"pos_conv_embed.convs.\1.", k): v for k, v in state.items()
    }


def _build(
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
        transformer = model.encoder.transformer
        transformer.pos_conv_embed = Data2VecPositionalConv(
            kwargs["encoder_embed_dim"],
            kwargs["encoder_pos_conv_kernel"],
            kwargs["encoder_pos_conv_groups"],
            int(config["data2vec_pos_conv_layers"]),
        )
        state = _data2vec_keys(state)
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
    return HubertTeacher(model, final_proj, label_embeddings, logit_temp, normalize_waveform)


def _as_dict(obj: Any) -> Dict[str, Any]:
    """A mapping, or an object's attributes (a Namespace, a config), as a plain dict."""
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


FAIRSEQ_FAMILIES = {"hubert": "hubert", "wav2vec2": "wav2vec2"}
FAIRSEQ_FINE_TUNED = ("wav2vec_ctc", "hubert_ctc", "wav2vec_seq2seq", "hubert_seq2seq")
FAIRSEQ_MODULES = ("fairseq.", "examples.")  # classes a fairseq checkpoint may reference (config dataclasses, enums)


def _fairseq_model_config(checkpoint: Mapping[str, Any], path: PathLike) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The model and task configs, with fairseq's precedence: ``args`` (a Namespace) over ``cfg``."""
    if checkpoint.get("args") is not None:
        args = _as_dict(checkpoint["args"])
        return args, args  # one flat namespace holds the model's and the task's settings
    if checkpoint.get("cfg") is not None:
        cfg = _as_dict(checkpoint["cfg"])
        task = cfg.get("task")
        return _as_dict(require_entry(cfg, "model", f"{path} (cfg)")), _as_dict(task) if task is not None else {}
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
    return _build(
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
    inner = _as_dict(w2v_args)
    if inner.get("model") is not None:  # a cfg of the pretraining run
        task_cfg = {**_as_dict(inner.get("task") or {}), **{k: v for k, v in task_cfg.items() if k == "normalize"}}
        inner = _as_dict(inner["model"])
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


# --- WavLM's original release ----------------------------------------------


WAVLM_ATTENTION_KEYS = {
    "grep_linear.": "gru_rel_pos_linear.",
    "grep_a": "gru_rel_pos_const",
    "relative_attention_bias.": "rel_attn_embed.",
}


def _wavlm_key(key: str) -> Optional[str]:
    """Microsoft's WavLM names -> torchaudio's; the rest are fairseq's (q/k/v stay separate, packed afterwards)."""
    match = re.match(r"^encoder\.layers\.(\d+)\.self_attn\.(grep_linear\.|grep_a$|relative_attention_bias\.)(.*)$", key)
    if match:
        layer, name, rest = match.groups()
        return f"encoder.transformer.layers.{layer}.attention.{WAVLM_ATTENTION_KEYS[name]}{rest}"
    return fairseq_key(key)


def load_wavlm(path: PathLike, trust_checkpoint: bool = False) -> HubertTeacher:
    """Microsoft's original WavLM checkpoint (``WavLM-Base+.pt``: ``cfg``, a plain dict, and ``model``)."""
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT, stand_in_modules=FAIRSEQ_MODULES)
    cfg = _as_dict(require_entry(checkpoint, "cfg", path))
    state = require_entry(checkpoint, "model", path)
    if not cfg.get("relative_position_embedding", True) or not cfg.get("gru_rel_pos", True):
        raise CheckpointError(f"{path}: WavLM without relative position embedding or its gating is not supported")
    converted: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        try:
            new_key = _wavlm_key(key)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from e
        if new_key is not None:
            converted[new_key] = value
    _pack_wavlm_attention(converted, int(cfg.get("encoder_layers", 12)))
    config = {
        **fairseq_config(cfg),
        "encoder_num_buckets": int(cfg.get("num_buckets", 320)),
        "encoder_max_distance": int(cfg.get("max_distance", 800)),
    }
    return _build(config, converted, path, family="wavlm", normalize_waveform=bool(cfg.get("normalize", False)))


# --- Hugging Face --------------------------------------------------------

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


def _pack_wavlm_attention(state: Dict[str, torch.Tensor], num_layers: int) -> None:
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
        _pack_wavlm_attention(converted, num_layers)
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
    return _build(config, converted, weights, family=family, normalize_waveform=normalize)


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


# --- torchaudio and ESPnet -----------------------------------------------


def _pretrain_head(
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
    "wavlm": load_wavlm,
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
            raise CheckpointError(
                f"{path}: sha256 {actual} is not the expected {expected} (teacher_conf.sha256, or --teacher_sha256 "
                f"/ {path.name}.sha256 in a recipe): the file is not the one it should be"
            )
    return LOADERS[name](**conf)
