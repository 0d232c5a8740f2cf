"""Teacher loaders: small random checkpoints in each real layout, checked against references."""

import argparse
import json
import sys
import types

import pytest
import torch
import torch.nn.functional as F
import yaml
from torchaudio.models import hubert_pretrain_model, wav2vec2_model

from espnet_distill.frontend.conv import parse_conv_layers
from espnet_distill.teacher import CheckpointError, load_teacher
from tests.conftest import TINY_CONV, TINY_ENCODER, TINY_PRETRAIN_HEAD

SMALL = {**TINY_ENCODER, "encoder_ff_interm_features": 96}  # the FFN width the fairseq config and errors below name
# transformers' config arguments of a small HuBERT on TINY_CONV, dropout off.
SMALL_HF = dict(
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=96,
    conv_dim=[c for c, _, _ in TINY_CONV],
    conv_kernel=[k for _, k, _ in TINY_CONV],
    conv_stride=[s for _, _, s in TINY_CONV],
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
)


def original_model_cfg(family, stable=False):
    """fairseq's model config (the original layout) of the small model of SMALL and SMALL_HF: post-LN with a
    group-norm CNN, or with ``stable`` pre-LN with a layer-norm CNN with biases."""
    return {
        "_name": family,
        "extractor_mode": "layer_norm" if stable else "default",
        "conv_bias": stable,
        "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
        "encoder_embed_dim": 64,
        "encoder_layers": 3,
        "encoder_attention_heads": 4,
        "encoder_ffn_embed_dim": 96,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "layer_norm_first": stable,
    }


def waveforms(count=2, seconds=(1.0, 0.7)):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(int(16000 * s), generator=gen) * 0.1 for s in seconds[:count]]


def randomize(module):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module


def reference_layers(model, wave):
    """torchaudio's own per-layer outputs (layers 1..L) of one utterance."""
    model.eval()
    with torch.no_grad():
        outputs, _ = model.extract_features(wave[None])
    return outputs


def reference_logits(last, final_proj, embeddings, temp=0.1):
    proj = final_proj(last)
    return F.cosine_similarity(proj[:, :, None, :], embeddings[None, None], dim=-1) / temp


def check_against_torchaudio(teacher, model, head=None):
    for wave in waveforms():
        out = teacher(wave[None])
        expected = reference_layers(model, wave)
        assert len(out.hidden_states) == len(expected) + 1
        for ours, ref in zip(out.hidden_states[1:], expected):
            torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
        assert out.lengths.tolist() == [expected[0].shape[1]]
        if head is not None:
            torch.testing.assert_close(out.codeword_logits, reference_logits(expected[-1], *head), atol=1e-4, rtol=0)
        else:
            assert out.codeword_logits is None


# --- fairseq --------------------------------------------------------------


def to_fairseq_key(key):
    """torchaudio -> fairseq names (the inverse of torchaudio's importer), for writing test files."""
    rules = [
        (r"^feature_extractor\.conv_layers\.0\.layer_norm\.", "feature_extractor.conv_layers.0.2."),
        (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
        (r"^encoder\.feature_projection\.projection\.", "post_extract_proj."),
        (r"^encoder\.feature_projection\.layer_norm\.", "layer_norm."),
        (
            r"^encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
            "encoder.pos_conv.0.weight_g",
        ),
        (
            r"^encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
            "encoder.pos_conv.0.weight_v",
        ),
        (r"^encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
        (r"^encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
        (r"^encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
        (r"^encoder\.transformer\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
        (r"^encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
        (r"^encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
        (r"^encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    ]
    import re

    for pattern, replacement in rules:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(key)


@pytest.fixture
def fake_fairseq_dictionary(monkeypatch):
    """A class pickled as fairseq.data.dictionary.Dictionary, as real HuBERT checkpoints hold."""
    module = types.ModuleType("fairseq.data.dictionary")

    class Dictionary:
        def __init__(self):
            self.symbols = ["<s>", "0", "1"]
            self.count = [1, 5, 7]

    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = "Dictionary"
    module.Dictionary = Dictionary
    for name in ("fairseq", "fairseq.data", "fairseq.data.dictionary"):
        monkeypatch.setitem(sys.modules, name, module if name.endswith("dictionary") else types.ModuleType(name))
    return Dictionary


def write_fairseq_checkpoint(path, dictionary_cls, use_args=False):
    model = randomize(wav2vec2_model(**SMALL, aux_num_out=None))
    final_proj = randomize(torch.nn.Linear(64, 16))
    embeddings = torch.randn(20, 16, generator=torch.Generator().manual_seed(2))
    state = {to_fairseq_key(k): v for k, v in model.state_dict().items()}
    state.update(
        {
            "final_proj.weight": final_proj.weight.data,
            "final_proj.bias": final_proj.bias.data,
            "label_embs_concat": embeddings,
            "mask_emb": torch.zeros(64),
        }
    )
    model_cfg = {**original_model_cfg("hubert"), "final_dim": 16, "logit_temp": 0.1}
    checkpoint = {"model": state, "task_state": {"dictionaries": [dictionary_cls()]}, "optimizer_history": []}
    if use_args:
        checkpoint["args"] = argparse.Namespace(**model_cfg)
        checkpoint["cfg"] = None
    else:
        checkpoint["cfg"] = {"model": model_cfg, "task": {"_name": "hubert_pretraining", "labels": ["km"]}}
    torch.save(checkpoint, path)
    return model, (final_proj, embeddings)


@pytest.mark.parametrize("use_args", [False, True])
def test_fairseq_checkpoint_matches_torchaudio(tmp_path, fake_fairseq_dictionary, use_args):
    path = tmp_path / "hubert_tiny.pt"
    model, head = write_fairseq_checkpoint(path, fake_fairseq_dictionary, use_args)
    sys.modules.pop("fairseq.data.dictionary")  # the loader must not need fairseq
    teacher = load_teacher("fairseq", path=str(path))
    assert teacher.num_layers == 3 and teacher.hidden_size == 64 and teacher.has_codewords
    check_against_torchaudio(teacher, model, head)


def test_fairseq_conv_layer_spec_is_parsed_without_eval():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    )
    with pytest.raises(ValueError):
        parse_conv_layers("__import__('os').system('true')")


# --- Hugging Face ---------------------------------------------------------


@pytest.mark.parametrize("stable_layer_norm", [False, True])
def test_huggingface_directory_matches_transformers(tmp_path, stable_layer_norm):
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        **SMALL_HF,
        feat_extract_norm="layer" if stable_layer_norm else "group",
        do_stable_layer_norm=stable_layer_norm,
    )
    torch.manual_seed(3)
    reference = HubertModel(config).eval()
    reference.save_pretrained(tmp_path / "hf")
    teacher = load_teacher("huggingface", path=str(tmp_path / "hf"))
    assert not teacher.has_codewords
    for wave in waveforms():
        with torch.no_grad():
            expected = reference(wave[None], output_hidden_states=True).hidden_states
        out = teacher(wave[None])
        assert len(out.hidden_states) == len(expected) == 4
        for ours, ref in zip(out.hidden_states, expected):
            torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


# --- torchaudio and ESPnet ------------------------------------------------


def small_pretrain_model():
    torch.manual_seed(4)
    model = hubert_pretrain_model(**SMALL, **TINY_PRETRAIN_HEAD).eval()
    randomize(model.logit_generator)
    return model


def test_torchaudio_pretrain_checkpoint(tmp_path):
    model = small_pretrain_model()
    torch.save({"config": {**SMALL, **TINY_PRETRAIN_HEAD}, "model": model.state_dict()}, tmp_path / "ta.pt")
    teacher = load_teacher("torchaudio", path=str(tmp_path / "ta.pt"))
    head = (model.logit_generator.final_proj, model.logit_generator.label_embeddings)
    check_against_torchaudio(teacher, model.wav2vec2, head)


def test_torchaudio_wav2vec2_checkpoint_without_head(tmp_path):
    model = randomize(wav2vec2_model(**SMALL, aux_num_out=None))
    torch.save({"config": SMALL, "model": model.state_dict()}, tmp_path / "w.pt")
    check_against_torchaudio(load_teacher("torchaudio", path=str(tmp_path / "w.pt")), model)


def test_espnet_hubert_checkpoint(tmp_path):
    from espnet2.asr.encoder.hubert_encoder import TorchAudioHuBERTPretrainEncoder

    encoder_conf = {**SMALL, **TINY_PRETRAIN_HEAD, "extractor_conv_layer_config": [list(c) for c in TINY_CONV]}
    encoder = TorchAudioHuBERTPretrainEncoder(input_size=1, **encoder_conf)
    randomize(encoder.hubert_pretrain_model.logit_generator)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    exp = tmp_path / "exp" / "hubert_train"
    exp.mkdir(parents=True)
    torch.save(state, exp / "valid.acc.best.pth")
    (exp / "config.yaml").write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": encoder_conf}))
    teacher = load_teacher("espnet", path=str(exp / "valid.acc.best.pth"))
    pretrain = encoder.hubert_pretrain_model
    head = (pretrain.logit_generator.final_proj, pretrain.logit_generator.label_embeddings)
    check_against_torchaudio(teacher, pretrain.wav2vec2, head)


# --- errors and safety ----------------------------------------------------


def test_teacher_is_frozen(tmp_path):
    model = small_pretrain_model()
    torch.save({"config": {**SMALL, **TINY_PRETRAIN_HEAD}, "model": model.state_dict()}, tmp_path / "ta.pt")
    teacher = load_teacher("torchaudio", path=str(tmp_path / "ta.pt"))
    torch.nn.Sequential(teacher).train()  # a parent switching to train mode
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    out = teacher(waveforms(1)[0][None])
    assert not out.hidden_states[-1].requires_grad


def test_missing_key_wrong_shape_and_truncated_file(tmp_path):
    model = small_pretrain_model()
    state = model.state_dict()
    config = {**SMALL, **TINY_PRETRAIN_HEAD}
    key = "wav2vec2.encoder.transformer.layers.1.feed_forward.output_dense.weight"
    broken = {k: v for k, v in state.items() if k != key}
    torch.save({"config": config, "model": broken}, tmp_path / "missing.pt")
    with pytest.raises(
        CheckpointError,
        match=r"missing.pt: missing key 'encoder.transformer.layers.1.feed_forward.output_dense.weight'",
    ):
        load_teacher("torchaudio", path=str(tmp_path / "missing.pt"))
    wrong = dict(state, **{key: torch.zeros(3, 3)})
    torch.save({"config": config, "model": wrong}, tmp_path / "shape.pt")
    with pytest.raises(
        CheckpointError, match=r"shape.pt: key '.*output_dense.weight' has shape \(3, 3\), expected \(64, 96\)"
    ):
        load_teacher("torchaudio", path=str(tmp_path / "shape.pt"))
    torch.save({"config": config, "model": state}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.pt: cannot read checkpoint \(truncated or corrupt\?\)"):
        load_teacher("torchaudio", path=str(tmp_path / "cut.pt"))
    with pytest.raises(CheckpointError, match=r"nothere.pt: no such checkpoint file"):
        load_teacher("torchaudio", path=str(tmp_path / "nothere.pt"))
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(CheckpointError, match="no model.safetensors or pytorch_model.bin"):
        load_teacher("huggingface", path=str(tmp_path / "hf"))


class Exploit:
    """Pickles as a call of os.system, the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_pickled_callable_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    model = small_pretrain_model()
    torch.save(
        {"config": {**SMALL, **TINY_PRETRAIN_HEAD}, "model": model.state_dict(), "extra": Exploit(marker)},
        tmp_path / "evil.pt",
    )
    with pytest.raises(CheckpointError, match=r"evil.pt: refused to load: .*allow-list.*trust_checkpoint"):
        load_teacher("torchaudio", path=str(tmp_path / "evil.pt"))
    assert not marker.exists()
    # Only an explicit trust runs it (here, harmlessly).
    load_teacher("torchaudio", path=str(tmp_path / "evil.pt"), trust_checkpoint=True)
    assert marker.exists()


def test_a_hugging_face_pytorch_model_bin_is_refused_or_trusted_and_check_teacher_passes_trust(tmp_path, tiny_corpus):
    from transformers import HubertConfig, HubertModel

    from espnet_distill.recipe import check_teacher

    config = HubertConfig(**{**SMALL_HF, "num_hidden_layers": 2})
    HubertModel(config).save_pretrained(tmp_path / "hf")
    # An older directory layout: pytorch_model.bin (a pickle) instead of model.safetensors.
    from safetensors.torch import load_file

    marker = tmp_path / "pwned"
    torch.save(
        {**load_file(tmp_path / "hf" / "model.safetensors"), "masked_spec_embed": Exploit(marker)},
        tmp_path / "hf" / "pytorch_model.bin",
    )
    (tmp_path / "hf" / "model.safetensors").unlink()
    # The refusal names the option that exists for teachers.
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: refused .*trust_checkpoint: true in teacher_conf"):
        load_teacher("huggingface", path=str(tmp_path / "hf"))
    assert not marker.exists()
    check_teacher.main(
        [
            "--teacher",
            "huggingface",
            "--path",
            str(tmp_path / "hf"),
            "--trust_checkpoint",
            "true",
            "--data_dir",
            str(tiny_corpus["data"] / "dev"),
            "--out_dir",
            str(tmp_path / "out"),
        ]
    )
    assert marker.exists()
    assert yaml.safe_load((tmp_path / "out" / "teacher.yaml").read_text())["teacher_conf"]["trust_checkpoint"] is True


def test_extra_state_with_numpy_scalars_and_arrays_loads(tmp_path):
    """Training state pickles numpy scalars and arrays: rebuilding them runs no code, so they load."""
    import numpy as np

    from espnet_distill.utils.checkpoint import load_checkpoint

    state = {
        "model": {"w": torch.ones(2)},
        "extra_state": {"best": np.float64(0.5), "step": np.int64(3), "hist": np.arange(3)},
    }
    torch.save(state, tmp_path / "ckpt.pt")
    loaded = load_checkpoint(tmp_path / "ckpt.pt")
    assert loaded["extra_state"]["best"] == 0.5 and loaded["extra_state"]["step"] == 3
    np.testing.assert_array_equal(loaded["extra_state"]["hist"], np.arange(3))
