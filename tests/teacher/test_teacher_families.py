"""Teachers beyond HuBERT: wav2vec 2.0, WavLM and data2vec-audio in Hugging Face's and the original layouts,
each compared layer by layer with an independent reference on a small random model."""

import json

import pytest
import torch

from espnet_distill.teacher import CheckpointError, load_teacher
from tests.teacher.test_loaders import SMALL_HF, original_model_cfg, waveforms

transformers = pytest.importorskip("transformers")

# (transformers config class, model class, the backbone attribute of a *For* model or None, extra config)
FAMILIES = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", None, {}),
    "wav2vec2_stable_for_ctc": (
        "Wav2Vec2Config",
        "Wav2Vec2ForCTC",
        "wav2vec2",
        {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True, "vocab_size": 12},
    ),
    "hubert_for_ctc": ("HubertConfig", "HubertForCTC", "hubert", {"vocab_size": 12}),
    "wavlm": ("WavLMConfig", "WavLMModel", None, {"num_buckets": 32, "max_bucket_distance": 64}),
    "wavlm_stable_for_ctc": (
        "WavLMConfig",
        "WavLMForCTC",
        "wavlm",
        {
            "num_buckets": 32,
            "max_bucket_distance": 64,
            "do_stable_layer_norm": True,
            "feat_extract_norm": "layer",
            "vocab_size": 12,
        },
    ),
    "data2vec_audio": (
        "Data2VecAudioConfig",
        "Data2VecAudioModel",
        None,
        {"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 7, "feat_extract_norm": "layer", "conv_bias": True},
    ),
    "data2vec_audio_for_ctc": (
        "Data2VecAudioConfig",
        "Data2VecAudioForCTC",
        "data2vec_audio",
        {"num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 6, "vocab_size": 12},
    ),
}


def write_hf(tmp_path, family, normalize=False, **overrides):
    config_name, model_name, backbone, extra = FAMILIES[family]
    config = getattr(transformers, config_name)(**{**SMALL_HF, **extra, **overrides})
    torch.manual_seed(5)
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():  # norms and biases off their initial values, so that a misplaced one shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / family)
    if normalize:
        (tmp_path / family / "preprocessor_config.json").write_text(
            json.dumps({"do_normalize": True, "sampling_rate": 16000})
        )
    return tmp_path / family, (getattr(model, backbone) if backbone else model)


def max_diff_against(reference, teacher, normalize=False):
    worst = 0.0
    for wave in waveforms():
        x = wave[None]
        if normalize:  # what Wav2Vec2FeatureExtractor(do_normalize=True) feeds the model
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-5)
        with torch.no_grad():
            expected = reference(x, output_hidden_states=True).hidden_states
        out = teacher(wave[None])
        assert len(out.hidden_states) == len(expected) == 4
        for ours, ref in zip(out.hidden_states, expected):
            worst = max(worst, (ours - ref).abs().max().item())
    return worst


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_hugging_face_directory_matches_transformers_layer_by_layer(tmp_path, family, caplog):
    path, reference = write_hf(tmp_path, family)
    with caplog.at_level("INFO"):
        teacher = load_teacher("huggingface", path=str(path))
    assert teacher.num_layers == 3 and teacher.hidden_size == 64 and not teacher.has_codewords
    assert max_diff_against(reference, teacher) < 1e-4
    if family.endswith("for_ctc"):
        assert "dropped the" in caplog.text and "lm_head" in caplog.text


def test_do_normalize_of_the_preprocessor_is_honoured(tmp_path):
    path, reference = write_hf(tmp_path, "wav2vec2", normalize=True)
    teacher = load_teacher("huggingface", path=str(path))
    assert teacher.normalize_waveform
    assert max_diff_against(reference, teacher, normalize=True) < 1e-4
    # Padding does not change an utterance's normalized features.
    a, b = waveforms()
    batch = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    out = teacher(batch, torch.tensor([len(a), len(b)]))
    alone = teacher(b[None])
    frames = alone.hidden_states[-1].shape[1]
    torch.testing.assert_close(out.hidden_states[-1][1, :frames], alone.hidden_states[-1][0], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_act", "relu"),
        ("feat_extract_activation", "swish"),
        ("layer_norm_eps", 1e-6),
        ("feat_proj_layer_norm", False),
        ("conv_pos_batch_norm", True),
    ],
)
def test_a_config_field_that_changes_the_computation_is_refused_by_name(tmp_path, field, value):
    family = "hubert_for_ctc" if field in ("feat_proj_layer_norm", "conv_pos_batch_norm") else "wav2vec2"
    path, _ = write_hf(tmp_path, family)
    cfg = json.loads((path / "config.json").read_text())
    cfg[field] = value
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=f"config.json: {field} = {value!r} is not supported"):
        load_teacher("huggingface", path=str(path))


def test_an_unsupported_model_type_is_named(tmp_path):
    path, _ = write_hf(tmp_path, "wav2vec2")
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(model_type="wav2vec2-conformer", architectures=["Wav2Vec2ConformerModel"])
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="model_type 'wav2vec2-conformer'.*Wav2Vec2ConformerModel.*not supported"):
        load_teacher("huggingface", path=str(path))


# --- fairseq and WavLM's original layout -------------------------------------------


def to_original_key(key):
    """transformers -> fairseq / Microsoft WavLM names, written from those projects' module names."""
    import re

    rules = [
        (
            r"^feature_extractor\.conv_layers\.0\.layer_norm\.(weight|bias)$",
            r"feature_extractor.conv_layers.0.2.\1",
            "group",
        ),
        (
            r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)$",
            r"feature_extractor.conv_layers.\1.2.1.\2",
            "layer",
        ),
        (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0.", None),
        (r"^feature_projection\.layer_norm\.", "layer_norm.", None),
        (r"^feature_projection\.projection\.", "post_extract_proj.", None),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g", None),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v", None),
        (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias", None),
        (r"^encoder\.layer_norm\.", "encoder.layer_norm.", None),
        (
            r"^encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.",
            r"encoder.layers.\1.self_attn.grep_linear.",
            None,
        ),
        (r"^encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const$", r"encoder.layers.\1.self_attn.grep_a", None),
        (
            r"^encoder\.layers\.(\d+)\.attention\.rel_attn_embed\.",
            r"encoder.layers.\1.self_attn.relative_attention_bias.",
            None,
        ),
        (r"^encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn.", None),
        (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm.", None),
        (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1.", None),
        (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2.", None),
        (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm.", None),
        (r"^masked_spec_embed$", "mask_emb", None),
    ]
    for pattern, replacement, _ in rules:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(key)


@pytest.fixture
def fake_fairseq_classes(monkeypatch):
    """fairseq's config dataclass and enum, as a DictConfig cfg of a real checkpoint pickles them."""
    import dataclasses
    import enum
    import sys
    import types

    models = types.ModuleType("fairseq.models.wav2vec.wav2vec2")
    constants = types.ModuleType("fairseq.dataclass.constants")

    class ExtractorMode(enum.Enum):
        default = "default"
        layer_norm = "layer_norm"

    @dataclasses.dataclass
    class Wav2Vec2Config:
        _name: str = "wav2vec2"
        extractor_mode: ExtractorMode = ExtractorMode.default
        encoder_layers: int = 12

    for cls, module in ((ExtractorMode, constants), (Wav2Vec2Config, models)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    for name in ("fairseq", "fairseq.models", "fairseq.models.wav2vec", "fairseq.dataclass"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, models.__name__, models)
    monkeypatch.setitem(sys.modules, constants.__name__, constants)
    return Wav2Vec2Config, ExtractorMode


def structured_cfg(config_cls, mode_enum, model_cfg, task):
    from omegaconf import OmegaConf

    model = OmegaConf.structured(config_cls)
    fields = {k: v for k, v in model_cfg.items() if k not in ("_name", "extractor_mode", "encoder_layers")}
    with __import__("omegaconf").open_dict(model):
        model.update(fields)
    model.extractor_mode = mode_enum(model_cfg["extractor_mode"])
    model.encoder_layers = model_cfg["encoder_layers"]
    cfg = OmegaConf.create({"model": model, "task": task})
    OmegaConf.set_struct(cfg, True)
    return cfg


@pytest.mark.parametrize(
    "layout", ["cfg_dict", "cfg_dictconfig", "args_over_cfg", "fine_tuned", "fine_tuned_args", "normalized"]
)
def test_a_fairseq_wav2vec2_checkpoint_matches_transformers(tmp_path, layout, request, caplog):
    import argparse
    import sys

    import numpy as np

    stable = layout in ("normalized", "fine_tuned")
    _, reference = write_hf(tmp_path, "wav2vec2_stable_for_ctc" if stable else "wav2vec2")
    state = {to_original_key(k): v for k, v in reference.state_dict().items()}
    model_cfg = original_model_cfg("wav2vec2", stable)
    task = {"_name": "audio_pretraining", "normalize": layout == "normalized"}
    # Extra training state of a real run: numpy scalars, task_state dictionaries.
    checkpoint = {
        "optimizer_history": [{"num_updates": np.int64(400000), "lr": np.float64(5e-4)}],
        "extra_state": {"best": np.float32(2.5), "train_iterator": {"epoch": 3}},
        "task_state": {},
    }
    if layout == "cfg_dict":
        checkpoint.update(cfg={"model": model_cfg, "task": task}, args=None)
    elif layout == "cfg_dictconfig":
        checkpoint.update(
            cfg=structured_cfg(*request.getfixturevalue("fake_fairseq_classes"), model_cfg, task), args=None
        )
    elif layout == "args_over_cfg":  # fairseq reads args when both are set; cfg here describes another model
        checkpoint.update(
            args=argparse.Namespace(**{**task, **model_cfg}),
            cfg={"model": {**model_cfg, "encoder_layers": 7}, "task": task},
        )
    elif layout in ("fine_tuned", "fine_tuned_args", "normalized"):
        state = {f"w2v_encoder.w2v_model.{k}": v for k, v in state.items()}
        state.update({"w2v_encoder.proj.weight": torch.zeros(12, 64), "w2v_encoder.proj.bias": torch.zeros(12)})
        w2v_args = {"model": model_cfg, "task": task}
        if layout == "fine_tuned_args":
            checkpoint.update(
                args=argparse.Namespace(_name="wav2vec_ctc", w2v_args=argparse.Namespace(**{**task, **model_cfg})),
                cfg=None,
            )
        else:
            checkpoint.update(
                cfg={"model": {"_name": "wav2vec_ctc", "w2v_args": w2v_args}, "task": {"normalize": task["normalize"]}}
            )
    checkpoint["model"] = state
    torch.save(checkpoint, tmp_path / "w2v.pt")
    for name in [n for n in sys.modules if n == "fairseq" or n.startswith("fairseq.")]:
        del sys.modules[name]  # the loader must not need fairseq
    with caplog.at_level("INFO"):
        teacher = load_teacher("fairseq", path=str(tmp_path / "w2v.pt"))
    assert (
        teacher.num_layers == 3 and not teacher.has_codewords and teacher.normalize_waveform == (layout == "normalized")
    )
    assert max_diff_against(reference, teacher, normalize=layout == "normalized") < 1e-4
    if layout.startswith("fine_tuned"):
        assert "dropped w2v_encoder.proj" in caplog.text


@pytest.mark.parametrize("stable", [False, True], ids=["base_plus", "large_like"])
def test_the_original_wavlm_checkpoint_matches_transformers(tmp_path, stable):
    _, reference = write_hf(tmp_path, "wavlm_stable_for_ctc" if stable else "wavlm")
    state = {to_original_key(k): v for k, v in reference.state_dict().items()}
    cfg = {
        **original_model_cfg("wavlm", stable),
        "relative_position_embedding": True,
        "num_buckets": 32,
        "max_distance": 64,
        "gru_rel_pos": True,
        "normalize": stable,
        "conv_bias": reference.config.conv_bias,
    }
    cfg.pop("_name")
    torch.save({"cfg": cfg, "model": state}, tmp_path / "WavLM-tiny.pt")
    teacher = load_teacher("wavlm", path=str(tmp_path / "WavLM-tiny.pt"))
    assert teacher.is_wavlm and teacher.num_layers == 3 and teacher.normalize_waveform == stable
    assert max_diff_against(reference, teacher, normalize=stable) < 1e-4


def test_a_fairseq_checkpoint_that_would_run_code_is_still_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    Evil.__module__ = "fairseq.models.evil"  # a stand-in name does not let a callable through
    torch.save({"cfg": {"model": {}}, "model": {}, "extra": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_teacher("fairseq", path=str(tmp_path / "evil.pt"))


# --- distillation from every teacher type ---------------------------------------------


def write_teacher(tmp_path, kind):
    """A tiny teacher in the layout of ``kind``; returns ``(teacher, teacher_conf)`` as distill_train takes them."""
    if kind.startswith("hf_"):
        path, _ = write_hf(tmp_path, kind[3:])
        return "huggingface", {"path": str(path)}
    _, reference = write_hf(tmp_path, "wavlm" if kind == "wavlm_original" else "wav2vec2")
    state = {to_original_key(k): v for k, v in reference.state_dict().items()}
    cfg = original_model_cfg("wav2vec2", False)
    if kind == "wavlm_original":
        cfg.update(relative_position_embedding=True, num_buckets=32, max_distance=64, gru_rel_pos=True)
        torch.save({"cfg": cfg, "model": state}, tmp_path / "wavlm.pt")
        return "wavlm", {"path": str(tmp_path / "wavlm.pt")}
    torch.save({"cfg": {"model": cfg, "task": {"normalize": False}}, "model": state}, tmp_path / "w2v.pt")
    return "fairseq", {"path": str(tmp_path / "w2v.pt")}


# One of each layer structure (WavLM's gated relative attention, data2vec's positional convolutions, wav2vec 2.0's)
# and loader family; the loaders themselves are compared with transformers above.  Slow: a codebook and a
# distillation run in subprocesses, 13 s each (the fast tier keeps the loaders' comparisons above).
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wavlm_original", "hf_data2vec_audio", "fairseq_wav2vec2"])
def test_the_mini_students_distill_from_every_teacher_type_with_a_codebook_for_the_kl(tmp_path, tiny_corpus, kind):
    import subprocess
    import sys

    import yaml

    from espnet_distill.distill.export import load_student
    from espnet_distill.recipe.speech_shape import write_speech_shape
    from tests.conftest import REPO_ROOT

    teacher, conf = write_teacher(tmp_path, kind)
    (tmp_path / "teacher.yaml").write_text(yaml.safe_dump({"teacher": teacher, "teacher_conf": conf}))
    data = tiny_corpus["data"]
    codebook = tmp_path / "codebook.npz"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet_distill.bin.teacher_codebook",
            "--teacher_yaml",
            str(tmp_path / "teacher.yaml"),
            "--wav_scp",
            str(data / "train" / "wav.scp"),
            "--layer",
            "2",
            "--num_codewords",
            "8",
            "--max_utterances",
            "10",
            "--out",
            str(codebook),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("train", "dev"):
        write_speech_shape(data / name, tmp_path / "shapes" / name / "speech_shape")
    conf_args = ",".join(f"{k}={v}" for k, v in conf.items())
    exp = tmp_path / "exp"
    cmd = [
        sys.executable,
        "-m",
        "espnet_distill.bin.distill_train",
        "--config",
        str(REPO_ROOT / "egs/mini_synth/asr1/conf/distill/deep_thin_reg_kl.yaml"),
        "--teacher",
        teacher,
        "--teacher_conf",
        conf_args,
        "--model_conf",
        f"codebook={codebook}",
        "--train_data_path_and_name_and_type",
        f"{data}/train/wav.scp,speech,sound",
        "--train_shape_file",
        str(tmp_path / "shapes" / "train" / "speech_shape"),
        "--valid_data_path_and_name_and_type",
        f"{data}/dev/wav.scp,speech,sound",
        "--valid_shape_file",
        str(tmp_path / "shapes" / "dev" / "speech_shape"),
        "--batch_bins",
        "150000",
        "--num_workers",
        "0",
        "--max_epoch",
        "1",
        "--num_iters_per_epoch",
        "2",
        "--model_conf",
        "frontend_steps=0",
        "--output_dir",
        str(exp),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = __import__("json").loads((exp / "distill_summary.json").read_text())
    valid = summary["final"]["valid"]
    assert valid["discriminative"] > 0 and valid["regression"] > 0  # both losses computed and finite
    _, encoder, description = load_student(exp)
    assert (
        description["teacher"] == teacher and description["encoder_conf"]["num_layers"] == 3
    )  # deep-thin: the teacher's depth


# --- pruning each family ----------------------------------------------------------------


@pytest.mark.parametrize(
    "family, refused",
    [
        ("wav2vec2", None),
        ("hubert_for_ctc", None),
        # data2vec-audio's and WavLM's layers are not torchaudio's plain ones: no copy of the teacher to prune
        ("data2vec_audio", "the teacher's positional embedding is a "),
        ("wavlm", "the teacher's attention is a WavLMSelfAttention"),
    ],
)
def test_pruning_builds_on_each_family_and_refuses_by_name_what_it_cannot_cut(tmp_path, family, refused):
    """The mini pruning config (CNN channels, heads, FFN units) on a copy of each teacher family."""
    from espnet_distill.tasks.distill import DistillTask
    from tests.conftest import REPO_ROOT

    path, _ = write_hf(tmp_path, family)
    config = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/prune_deep_thin_reg.yaml"
    cmd = ["--config", str(config), "--teacher", "huggingface", "--teacher_conf", f"path={path}"]
    args = DistillTask.get_parser().parse_args([*cmd, "--output_dir", str(tmp_path / "out")])
    if refused is not None:
        with pytest.raises(ValueError, match=refused):
            DistillTask.build_model(args)
    else:
        model = DistillTask.build_model(args)
        pruning = model.pruning
        assert pruning.frontend_gates is not None and len(pruning.gates.heads) == SMALL_HF["num_hidden_layers"]
        full = sum(p.numel() for p in (*model.frontend.parameters(), *model.encoder.parameters()))
        assert pruning.lagrangian.full_params == full
        assert pruning.lagrangian.target_params == round(0.24 * full)
