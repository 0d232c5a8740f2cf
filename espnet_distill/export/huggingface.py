"""A wav_cnn student as a Hugging Face ``transformers`` HuBERT model.

The student's waveform CNN, feature projection, positional convolution and
Transformer layers are HuBERT's, so ``HubertModel`` expresses a distilled
student exactly, and ``HubertForCTC`` (its ``lm_head`` = ESPnet's CTC layer) a
fine-tuned one, with a ``Wav2Vec2Processor`` for char token lists.  Not
expressible, and refused by name: the Fbank front-end (no ``transformers``
audio model computes filterbanks inside), an encoder input layer (a front-end
narrower than the encoder), and BPE token lists for the processor (the weights
and ``vocab.json`` are still written).

The model is built from its config by ``transformers`` itself and the
weights are loaded into it strictly before it is saved, so every tensor has
its place.  HuBERT Base's group-norm CNN normalizes over the whole padded
input in ``transformers``; this project's CNN over each utterance's own
samples: batched outputs agree for utterances of equal length (or one at a time).
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from espnet_distill.files.student_dir import (
    STUDENT_WEIGHTS,
    STUDENT_YAML,
    description_file,
    is_student_dir,
    read_description,
    weights_file,
)
from espnet_distill.frontend.conv import HUBERT_BASE_CONV, conv_layer_list
from espnet_distill.inference.decode import load_asr_model
from espnet_distill.text.tokens import BLANK, SOS_EOS, SPACE, UNK
from espnet_distill.utils.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """The model cannot be written as a ``transformers`` model; the message says why."""


def hubert_config(
    frontend: str, frontend_conf: Mapping[str, Any], encoder_conf: Mapping[str, Any], source: str
) -> Dict[str, Any]:
    """``HubertConfig`` keys of a student's front-end and encoder configuration."""

    if frontend != "wav_cnn":
        raise ExportError(
            f"{source}: the {frontend} front-end has no transformers equivalent (its audio models take a waveform "
            "into a CNN); only wav_cnn students export to Hugging Face"
        )
    for key, uniform in (("layer_heads", "attention_heads"), ("layer_ffn_dims", "ffn_dim")):
        sizes = encoder_conf.get(key)
        if sizes is not None and len(set(sizes)) > 1:
            raise ExportError(
                f"{source}: a pruned student's layers differ in size ({key} {list(sizes)}); transformers' "
                f"HubertConfig has one {uniform} for every layer, so it cannot hold this model (export it to ONNX, "
                "or use it with this project's tools and ESPnet)"
            )
    conv = conv_layer_list(frontend_conf.get("conv_layers", HUBERT_BASE_CONV))
    width = int(encoder_conf.get("output_size", 768))
    if int(frontend_conf.get("output_dim", 768)) != width:
        raise ExportError(
            f"{source}: the front-end's output_dim {frontend_conf.get('output_dim')} differs from the encoder's "
            f"output_size {width}; HuBERT has no layer between them"
        )
    return dict(
        conv_dim=[c for c, _, _ in conv],
        conv_kernel=[k for _, k, _ in conv],
        conv_stride=[s for _, _, s in conv],
        num_feat_extract_layers=len(conv),
        feat_extract_norm="group" if frontend_conf.get("extractor_mode", "group_norm") == "group_norm" else "layer",
        conv_bias=bool(frontend_conf.get("conv_bias", False)),
        feat_extract_activation="gelu",
        feat_proj_layer_norm=True,
        hidden_size=width,
        num_hidden_layers=int(encoder_conf.get("num_layers", 2)),
        num_attention_heads=int(encoder_conf.get("attention_heads", 12)),
        intermediate_size=int(encoder_conf.get("ffn_dim", 3072)),
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        num_conv_pos_embeddings=int(encoder_conf.get("pos_conv_kernel", 128)),
        num_conv_pos_embedding_groups=int(encoder_conf.get("pos_conv_groups", 16)),
        conv_pos_batch_norm=False,
        do_stable_layer_norm=bool(encoder_conf.get("layer_norm_first", False)),
        hidden_dropout=float(encoder_conf.get("dropout", 0.1)),
        attention_dropout=float(encoder_conf.get("attention_dropout", 0.1)),
        activation_dropout=float(encoder_conf.get("activation_dropout", 0.0)),
        feat_proj_dropout=float(frontend_conf.get("dropout", 0.1)),
        layerdrop=float(encoder_conf.get("layer_drop", 0.0)),
    )


def hubert_state(state: Mapping[str, torch.Tensor], prefix: str, source: str) -> Dict[str, torch.Tensor]:
    """The student's ``frontend.*``/``encoder.*`` (and ``ctc.*``) tensors under ``transformers``' HuBERT names."""
    renames = (
        ("frontend.extractor.", "feature_extractor."),
        ("frontend.projection.", "feature_projection."),
        ("encoder.transformer.", "encoder."),
        ("ctc.ctc_lo.", "lm_head."),
    )
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                new_key = new + key[len(old) :]
                out[new_key if new == "lm_head." else prefix + new_key] = value
                break
        else:
            if key.startswith("encoder.input_layer."):
                raise ExportError(f"{source}: the encoder has an input layer ({key}); HuBERT has none")
            if key.startswith(("frontend.", "encoder.")):
                raise ExportError(f"{source}: {key} has no place in transformers' HubertModel")
    return out


def _load_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("masked_spec_embed")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ExportError(
            f"{source}: does not fit transformers' model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise ExportError(
                f"{source}: {key} has shape {tuple(value.shape)}, transformers expects {tuple(own[key].shape)}"
            )
    model.load_state_dict(state, strict=False)


def ctc_vocabulary(token_list: List[str]) -> Dict[str, int]:
    """``vocab.json`` of ``Wav2Vec2CTCTokenizer``: ``<space>`` becomes its word delimiter ``|``."""
    vocab = {("|" if token == SPACE else token): index for index, token in enumerate(token_list)}
    if len(vocab) != len(token_list):
        raise ExportError("the token list has duplicates (or both '<space>' and '|')")
    return vocab


def _write_processor(out_dir: Path, token_list: List[str], token_type: str) -> bool:
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    (out_dir / "vocab.json").write_text(
        json.dumps(ctc_vocabulary(token_list), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    if token_type != "char":
        logger.warning(
            "%s token lists have no transformers CTC tokenizer; wrote the model and vocab.json only", token_type
        )
        return False
    tokenizer = Wav2Vec2CTCTokenizer(
        str(out_dir / "vocab.json"),
        unk_token=UNK,
        pad_token=BLANK,
        word_delimiter_token="|",
        bos_token=None,
        eos_token=None,
        do_lower_case=False,
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False, return_attention_mask=False
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(out_dir))
    return True


def _fine_tuned(exp_dir: Path, checkpoint: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor], str]:
    model, args = load_asr_model(exp_dir, checkpoint)  # strict and safe: the weights fit config.yaml
    return vars(args), model.state_dict(), str(exp_dir / "config.yaml")


def export_hf(exp_dir: Path, out_dir: Path, checkpoint: Optional[str] = None) -> str:
    """Write ``out_dir`` from a distillation exp dir (``HubertModel``) or a fine-tuning one (``HubertForCTC``).

    Returns the ``transformers`` class written.
    """
    from transformers import HubertConfig, HubertForCTC, HubertModel

    if is_student_dir(exp_dir):
        description = read_description(exp_dir)
        source = str(description_file(exp_dir))
        cfg = hubert_config(description["frontend"], description["frontend_conf"], description["encoder_conf"], source)
        state = hubert_state(load_checkpoint(weights_file(exp_dir)), "", str(weights_file(exp_dir)))
        model = HubertModel(HubertConfig(**cfg))
        token_list, token_type = None, None
    elif (exp_dir / "config.yaml").is_file():
        args, weights, source = _fine_tuned(exp_dir, checkpoint)
        cfg = hubert_config(args["frontend"], args["frontend_conf"], args["encoder_conf"], source)
        token_list, token_type = list(args["token_list"]), args["token_type"]
        cfg.update(
            vocab_size=len(token_list),
            pad_token_id=token_list.index(BLANK),
            ctc_loss_reduction="mean",
            bos_token_id=None,
            eos_token_id=None,
        )
        if SOS_EOS in token_list:
            cfg["eos_token_id"] = cfg["bos_token_id"] = token_list.index(SOS_EOS)
        state = hubert_state(weights, "hubert.", source)
        model = HubertForCTC(HubertConfig(**cfg))
    else:
        raise ExportError(
            f"{exp_dir}: neither a distillation exp dir ({STUDENT_YAML}, {STUDENT_WEIGHTS}) nor a fine-tuning one (config.yaml)"
        )
    _load_strict(model, state, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    if token_list is not None:
        _write_processor(out_dir, token_list, token_type)
    logger.info("wrote %s (%s) to %s", type(model).__name__, source, out_dir)
    return type(model).__name__
