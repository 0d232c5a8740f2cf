"""The seam to other packages' internals (espnet_distill.seams, docs/seams.md): each private name is there
and does what the code relies on; each ESPnet patch does its one job and is undone; the version check
warns in one line; nothing in the package loads a checkpoint but the safe loader."""

import argparse
import importlib
import logging
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from espnet_distill import seams
from espnet_distill.utils import checkpoint
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint
from tests.conftest import REPO_ROOT
from tests.torch_loads import find_torch_loads

# --- versions ---------------------------------------------------------------------------------------------


def test_the_embedded_pins_are_those_of_tools_requirements():
    pins = {}
    for line in (REPO_ROOT / "tools" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        pins[name] = version
    assert seams.PINNED_VERSIONS == {name: pins[name] for name in ("torch", "torchaudio", "espnet")}
    assert {k: v for k, v in seams.CHECKED_VERSIONS.items() if k in pins} == seams.PINNED_VERSIONS


def test_a_build_tag_is_not_a_difference_and_another_version_is_one_warning_line(monkeypatch, caplog):
    versions = {"torch": "2.11.0+cu130", "torchaudio": "2.11.0", "espnet": "202511"}
    monkeypatch.setattr(seams, "installed_version", versions.get)
    assert seams.version_differences() == {} and seams.warn_if_versions_differ() is None
    versions.update(torch="2.12.1", espnet="202601")
    with caplog.at_level(logging.WARNING, logger="espnet_distill.seams"):
        message = seams.warn_if_versions_differ()
    assert [r.getMessage() for r in caplog.records] == [message]
    assert message == (
        "espnet-distill: installed torch 2.12.1 (pinned 2.11.0), espnet 202601 (pinned 202511) differ from "
        "tools/requirements.txt; the seams listed in docs/seams.md may need checking"
    )


def test_importing_the_package_warns_once_on_stderr_when_a_version_differs():
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '9.9.9' if name == 'torchaudio' else real(name)\n"
        "import espnet_distill, espnet_distill.utils.config\n"
        "print('imported')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "imported\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "torchaudio 9.9.9 (pinned 2.11.0)" in lines[0] and "docs/seams.md" in lines[0]


def test_without_a_difference_importing_the_package_prints_nothing():
    result = subprocess.run([sys.executable, "-c", "import espnet_distill"], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- private names ----------------------------------------------------------------------------------------


def test_every_private_name_exists_in_the_installed_versions():
    seams.check_private_names()
    assert {name.accessor for name in seams.PRIVATE_NAMES} <= set(dir(seams))


def test_a_missing_private_name_is_one_import_error_naming_it_and_the_versions():
    gone = seams.PrivateName("torchaudio", "torchaudio.models.wav2vec2.components", "_gone", "some_accessor")
    with pytest.raises(ImportError) as error:
        seams.check_private_names(names=[gone])
    assert isinstance(error.value, seams.SeamError)
    installed = seams.installed_version("torchaudio")
    assert str(error.value) == (
        f"torchaudio.models.wav2vec2.components._gone is missing in torchaudio {installed}; espnet-distill uses it "
        "(some_accessor) as checked against torchaudio 2.11.0: see docs/seams.md"
    )
    no_module = seams.PrivateName("numpy", "numpy._gone_core", "scalar", "numpy_pickle_constructors")
    with pytest.raises(seams.SeamError, match=r"^numpy\._gone_core\.scalar is missing in numpy "):
        seams.check_private_names("numpy", names=[no_module])


def tiny_encoder(layer_norm_first: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return seams.torchaudio_build_encoder(
        in_features=6,
        embed_dim=8,
        dropout_input=0.0,
        pos_conv_kernel=4,
        pos_conv_groups=2,
        num_layers=2,
        num_heads=2,
        attention_dropout=0.0,
        ff_interm_features=16,
        ff_interm_dropout=0.0,
        dropout=0.0,
        layer_norm_first=layer_norm_first,
        layer_drop=0.0,
    ).eval()


def test_torchaudio_build_encoder_builds_the_layers_asked_for():
    encoder = tiny_encoder()
    assert len(encoder.transformer.layers) == 2
    assert encoder.feature_projection.projection.in_features == 6
    assert encoder.transformer.layers[0].layer_norm_first


def test_torchaudio_build_feature_extractor_builds_the_convolutions_asked_for():
    extractor = seams.torchaudio_build_feature_extractor("layer_norm", [(4, 10, 5), (6, 3, 2)], False)
    convs = [layer.conv for layer in extractor.conv_layers]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.bias) for c in convs] == [
        (4, 10, 5, None),
        (6, 3, 2, None),
    ]
    features, lengths = extractor(torch.zeros(1, 400), torch.tensor([400]))
    assert features.shape == (1, 39, 6) and lengths.tolist() == [39]  # (400 - 10) // 5 + 1 = 79; (79 - 3) // 2 + 1 = 39


def test_wav2vec2_encoder_preprocess_projects_zeroes_padding_and_masks_padded_keys():
    encoder = tiny_encoder()
    features, lengths = torch.randn(2, 5, 6), torch.tensor([5, 3])
    x, mask = seams.wav2vec2_encoder_preprocess(encoder, features, lengths)
    assert x.shape == (2, 5, 8)
    assert torch.allclose(x[0], encoder.feature_projection(features[0:1])[0])
    assert torch.equal(x[1, 3:], torch.zeros(2, 8))
    assert mask.shape == (2, 1, 5, 5)
    assert torch.equal(mask[1, 0, 0], torch.tensor([0.0, 0.0, 0.0, -10000.0, -10000.0]))
    assert not mask[0].any()
    _, no_mask = seams.wav2vec2_encoder_preprocess(encoder, features, None)
    assert no_mask is None


@pytest.mark.parametrize("layer_norm_first", [True, False])
def test_wav2vec2_transformer_preprocess_adds_the_positional_convolution(layer_norm_first):
    transformer = tiny_encoder(layer_norm_first).transformer
    x = torch.randn(2, 5, 8)
    expected = x + transformer.pos_conv_embed(x)
    if not layer_norm_first:  # post-LN models normalize the first layer's input
        expected = transformer.layer_norm(expected)
    assert torch.allclose(seams.wav2vec2_transformer_preprocess(transformer, x), expected)


def test_wav2vec2_padding_mask_is_true_at_padded_frames():
    mask = seams.wav2vec2_padding_mask(torch.zeros(2, 4, 3), torch.tensor([4, 2]))
    assert mask.tolist() == [[False, False, False, False], [False, False, True, True]]


def test_fairseq_keys_map_to_torchaudio_names():
    assert (
        seams.fairseq_key_to_torchaudio("encoder.layers.3.fc1.weight")
        == "encoder.transformer.layers.3.feed_forward.intermediate_dense.weight"
    )
    assert seams.fairseq_key_to_torchaudio("final_proj.weight") is None  # dropped: the loader reads it itself
    with pytest.raises(ValueError, match="Unexpected key: not_a_key"):
        seams.fairseq_key_to_torchaudio("not_a_key")
    state = {"post_extract_proj.weight": torch.ones(1), "final_proj.bias": torch.zeros(1)}
    assert list(seams.fairseq_state_dict_to_torchaudio(state)) == ["encoder.feature_projection.projection.weight"]


def test_numpy_pickle_constructors_are_what_numpy_pickles_reference(tmp_path):
    names = {f"{c.__module__}.{c.__qualname__}" for c in seams.numpy_pickle_constructors()}
    assert names == {"numpy._core.multiarray.scalar", "numpy._core.multiarray._reconstruct"}
    torch.save({"best": np.float64(0.5), "hist": np.arange(3)}, tmp_path / "x.pt")
    loaded = load_checkpoint(tmp_path / "x.pt")  # allowed through the safe loader
    assert loaded["best"] == 0.5 and loaded["hist"].tolist() == [0, 1, 2]


def test_torch_module_apply_converts_a_module_held_outside_its_parent():
    held = torch.nn.Linear(2, 2)
    assert seams.torch_module_apply(held, lambda t: t.double()) is held
    assert held.weight.dtype == torch.float64 and held.bias.dtype == torch.float64


def test_argparse_actions_lists_every_option():
    parser = argparse.ArgumentParser()
    parser.add_argument("--beam_size", type=int)
    assert [a.dest for a in seams.argparse_actions(parser)] == ["help", "beam_size"]


# --- ESPnet patches ---------------------------------------------------------------------------------------


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_espnet_loads_safe_routes_every_guarded_module_and_ignores_weights_only_false(tmp_path):
    modules = [importlib.import_module(name) for name in seams.GUARDED_MODULES]
    evil = tmp_path / "evil.pth"
    torch.save({"model": Payload(tmp_path / "ran")}, evil)
    with checkpoint.espnet_loads_safe():
        for module in modules:
            assert module.torch.load is checkpoint.safe_torch_load
            assert module.torch.nn is torch.nn and module.torch.save is torch.save  # the rest is torch's
            with pytest.raises(CheckpointError, match="evil.pth: refused to load"):
                module.torch.load(evil, map_location="cpu", weights_only=False)
    assert not (tmp_path / "ran").exists()
    assert all(module.torch is torch for module in modules)


def test_espnet_saves_atomic_replaces_only_save_and_nests_with_the_safe_loads():
    trainer = importlib.import_module("espnet2.train.trainer")
    with checkpoint.espnet_saves_atomic():
        assert trainer.torch.save is checkpoint.atomic_torch_save and trainer.torch.load is torch.load
        with checkpoint.espnet_loads_safe():
            assert trainer.torch.save is checkpoint.atomic_torch_save
            assert trainer.torch.load is checkpoint.safe_torch_load
        assert trainer.torch.load is torch.load
    assert trainer.torch is torch


def test_atomic_torch_save_writes_file_objects_directly(tmp_path):
    with open(tmp_path / "x.pt", "wb") as f:
        checkpoint.atomic_torch_save({"w": torch.ones(2)}, f)
    assert torch.load(tmp_path / "x.pt", weights_only=True)["w"].tolist() == [1.0, 1.0]


def test_the_two_import_hooks_are_installed_once_each():
    code = (
        "import sys, espnet_distill\n"
        "from espnet_distill import seams\n"
        "seams.install_component_registration(espnet_distill._espnet_asr_choices); seams.install_import_print_quieting()\n"
        "hooks = [f for f in sys.meta_path if isinstance(f, seams.ImportHook)]\n"
        "print(sorted((f.job.__name__, f.module_names) for f in hooks))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == (
        "[('log_import_prints', ('espnet.nets.pytorch_backend.transformer.attention',)), "
        "('register_components_after_import', ('espnet2.tasks.asr',))]"
    )


def test_an_import_hook_runs_its_job_around_the_module_and_keeps_its_loader(tmp_path, monkeypatch, caplog):
    (tmp_path / "noisy_module_for_seams.py").write_text("print('hello from import')\nVALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = seams.ImportHook(["noisy_module_for_seams"], seams.log_import_prints)
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "noisy_module_for_seams", raising=False)
    with caplog.at_level(logging.DEBUG, logger="espnet_distill.seams"):
        module = importlib.import_module("noisy_module_for_seams")
    assert module.VALUE == 3 and module.__spec__.loader.get_filename("noisy_module_for_seams").endswith(".py")
    assert [r.getMessage() for r in caplog.records] == ["noisy_module_for_seams: hello from import"]


def test_registering_under_a_name_espnet_gives_another_class_is_refused():
    choices = types.SimpleNamespace(name="encoder", classes={"student_transformer": dict})
    with pytest.raises(seams.RegistrationError, match=r"encoder choices already have 'student_transformer'"):
        seams._add_choice(choices, "student_transformer", list)
    seams._add_choice(choices, "other", list)
    assert choices.classes["other"] is list


# --- the guard's scanner, and the package under it ----------------------------------------------------------

PLANTED = '''
import torch
import torch as th
import torch.serialization
from torch import serialization as ser
from torch import nn, load
from torch.serialization import load as sload

"""torch.load( in a docstring is no use"""
# torch.load( in a comment is none either
a = torch.load(path)
b = torch.serialization.load(path)
c = th.load(path)
d = ser.load(path)
e = load(path)
f = sload(path)
g = json.load(handle)
'''


def test_the_scanner_finds_each_planted_load_and_nothing_else():
    assert find_torch_loads(PLANTED) == [
        (6, "from torch import load"),
        (7, "from torch.serialization import load"),
        (11, "torch.load("),
        (12, "torch.serialization.load("),
        (13, "torch.load("),
        (14, "torch.serialization.load("),
        (15, "load("),
        (16, "sload("),
    ]
    assert find_torch_loads("import json\nx = json.load(f)\ntorch.loads = 1\n") == []


def test_nothing_in_the_package_loads_a_checkpoint_but_the_safe_loader():
    found = {}
    for path in sorted((REPO_ROOT / "espnet_distill").rglob("*.py")):
        uses = find_torch_loads(path.read_text(encoding="utf-8"), str(path))
        if uses:
            found[str(path.relative_to(REPO_ROOT))] = [what for _, what in uses]
    assert found == {"espnet_distill/utils/checkpoint.py": ["torch.load("]}
    source = (REPO_ROOT / "espnet_distill/utils/checkpoint.py").read_text(encoding="utf-8")
    assert re.search(r"def load_checkpoint\((?:(?!\ndef ).)*torch\.load\(", source, re.S), "not in load_checkpoint"


def test_register_espnet_data_type_adds_one_reader_and_refuses_clashes(tmp_path):
    from espnet2.train.dataset import DATA_TYPES, ESPnetDataset

    from espnet_distill.distill.targets import TargetsReader

    assert DATA_TYPES["teacher_targets"]["func"] is TargetsReader  # registered by the import
    seams.register_espnet_data_type("teacher_targets", TargetsReader, "again")  # idempotent
    with pytest.raises(seams.RegistrationError, match="already have 'teacher_targets'"):
        seams.register_espnet_data_type("teacher_targets", dict, "another reader")
    with pytest.raises(seams.RegistrationError, match="data type 'sound' would match 'sound_targets' first"):
        seams.register_espnet_data_type("sound_targets", dict, "shadowed")
    assert "sound_targets" not in DATA_TYPES
    # ESPnet's data set builds the registered reader for the type
    (tmp_path / "shards" / "00000").mkdir(parents=True)
    np.save(tmp_path / "shards" / "00000" / "teacher_hidden.npy", np.arange(12, dtype=np.float16).reshape(6, 1, 2))
    (tmp_path / "teacher_hidden.scp").write_text("a 00000 0 2\nb 00000 2 4\n")
    data = ESPnetDataset([(str(tmp_path / "teacher_hidden.scp"), "teacher_hidden", "teacher_targets")])
    assert isinstance(data.loader_dict["teacher_hidden"], TargetsReader)
    utt, arrays = data["b"]
    assert utt == "b" and arrays["teacher_hidden"].dtype == np.float32  # ESPnet's float conversion
    assert arrays["teacher_hidden"].reshape(-1).tolist() == list(range(4, 12))
