"""The commands that load a fine-tuning exp dir (pack_model, asr_inference, export_hf, espnet_asr_inference,
export_onnx) refuse a bad model file, config.yaml or output path with one line naming it, exit status 1,
before any work and leaving nothing behind.

Fast: a tiny wav_cnn model with random weights (tests.inference.test_load_model.tiny_asr_exp); the
commands run in this process through ``utils.cli.run``, except where the test is about the real process.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from tests.conftest import Payload, one_error, run_main
from tests.inference.test_load_model import (
    MODEL_FILE,
    TOKENS,
    edited_copy,
    tiny_asr_exp,
    with_unknown_encoder_key,
    without_token_list,
)

pytestmark = pytest.mark.usefixtures("restore_logging")  # the commands point the root logger at stderr


@pytest.fixture(scope="module")
def asr_exp(tmp_path_factory) -> Path:
    return tiny_asr_exp(tmp_path_factory.mktemp("commands") / "asr_tiny")


@pytest.fixture(scope="module")
def wav_scp(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    samples = np.random.default_rng(0).standard_normal(16000) * 3000
    sf.write(str(root / "u1.wav"), samples.astype(np.int16), 16000, subtype="PCM_16")
    (root / "wav.scp").write_text(f"u1 {root / 'u1.wav'}\n")
    return root / "wav.scp"


def call(module: str, capsys, *argv):
    """``python -m espnet_distill.bin.<module> *argv`` in this process: (exit status, stderr)."""
    import importlib

    code, _, err = run_main(importlib.import_module(f"espnet_distill.bin.{module}").main, capsys, *argv)
    return code, err


# 1. pack_model loads and checks what it packs before writing anything.


def pack(capsys, exp: Path, out_dir: Path):
    code, err = call("pack_model", capsys, exp, out_dir / "tiny.zip")
    assert not out_dir.exists(), list(out_dir.iterdir())  # no archive, no temporary file, not even the directory
    return code, err


def test_pack_model_packs_a_model_that_loads(asr_exp, tmp_path, capsys):
    code, err = call("pack_model", capsys, asr_exp, tmp_path / "out" / "tiny.zip")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "out" / "tiny.zip") as z:
        assert z.read(f"exp/asr_tiny/{MODEL_FILE}") == (asr_exp / MODEL_FILE).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tiny.zip"]


@pytest.mark.parametrize(
    "wrap",
    [lambda payload: payload, lambda payload: {"encoder.x": payload}],
    ids=["whole", "nested_in_the_state_dict"],
)
def test_pack_model_refuses_a_model_file_that_pickles_a_callable(asr_exp, tmp_path, capsys, wrap):
    exp = shutil.copytree(asr_exp, tmp_path / "exp")
    torch.save(wrap(Payload(tmp_path / "ran")), exp / MODEL_FILE)
    code, err = pack(capsys, exp, tmp_path / "out")
    assert code == 1
    assert "refused to load" in one_error(err, exp / MODEL_FILE, "Nothing was executed")
    assert not (tmp_path / "ran").exists()


def test_pack_model_refuses_a_truncated_model_file(asr_exp, tmp_path, capsys):
    exp = shutil.copytree(asr_exp, tmp_path / "exp")
    data = (exp / MODEL_FILE).read_bytes()
    (exp / MODEL_FILE).write_bytes(data[: len(data) // 2])
    code, err = pack(capsys, exp, tmp_path / "out")
    assert code == 1
    one_error(err, exp / MODEL_FILE, "cannot read checkpoint (truncated or corrupt?)")


def test_pack_model_refuses_weights_of_the_wrong_shape(asr_exp, tmp_path, capsys):
    exp = shutil.copytree(asr_exp, tmp_path / "exp")
    state = torch.load(exp / MODEL_FILE, weights_only=True)
    key = "encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"
    assert tuple(state[key].shape) == (64, 32)
    state[key] = torch.zeros(48, 32)
    torch.save(state, exp / MODEL_FILE)
    code, err = pack(capsys, exp, tmp_path / "out")
    assert code == 1
    one_error(err, exp / MODEL_FILE, f"key '{key}' has shape (48, 32), expected (64, 32)")


def test_pack_model_refuses_a_config_whose_encoder_conf_cannot_be_built(asr_exp, tmp_path, capsys):
    exp = edited_copy(asr_exp, tmp_path / "exp", with_unknown_encoder_key)
    code, err = pack(capsys, exp, tmp_path / "out")
    assert code == 1
    one_error(err, exp / "config.yaml", "encoder_conf: unknown key 'num_layerz'")


def test_pack_model_names_a_token_list_file_that_is_not_there(asr_exp, tmp_path, capsys):
    exp = edited_copy(asr_exp, tmp_path / "exp", lambda c: c.update(token_list="data/token_list/char/tokens.txt"))
    code, err = pack(capsys, exp, tmp_path / "out")
    assert code == 1
    one_error(err, exp / "config.yaml", "its token_list data/token_list/char/tokens.txt is not found")


def test_pack_model_reads_a_token_list_file_it_finds_in_the_recipe_dir(asr_exp, tmp_path, capsys):
    recipe = tmp_path / "recipe"
    (recipe / "data" / "token_list" / "char").mkdir(parents=True)
    (recipe / "data" / "token_list" / "char" / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    exp = edited_copy(
        asr_exp, recipe / "exp" / "asr_tiny", lambda c: c.update(token_list="data/token_list/char/tokens.txt")
    )
    code, err = call("pack_model", capsys, exp, tmp_path / "tiny.zip")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "tiny.zip") as z:
        assert yaml.safe_load(z.read("exp/asr_tiny/config.yaml"))["token_list"] == TOKENS
        assert z.read("exp/asr_tiny/tokens.txt").decode().split() == TOKENS


# 2. A bad config.yaml is one line naming it and the key, in every command that loads an exp dir.

BAD_CONFIGS = {
    "unknown_encoder_key": (with_unknown_encoder_key, "num_layerz"),
    "no_token_list": (without_token_list, "token_list"),
}


def loading_commands(exp: Path, out: Path, wav_scp: Path, model_file: str = MODEL_FILE):
    """The argv of each command that loads the fine-tuning exp dir ``exp`` (its ``model_file``)."""
    return {
        "asr_inference": ["--asr_exp", exp, "--wav_scp", wav_scp, "--output_dir", out],
        "export_hf": [exp, out],
        "espnet_asr_inference": [
            "--asr_train_config",
            exp / "config.yaml",
            "--asr_model_file",
            exp / model_file,
            "--ctc_weight",
            "1.0",
            "--lm_weight",
            "0",
            "--beam_size",
            "2",
            "--data_path_and_name_and_type",
            f"{wav_scp},speech,sound",
            "--output_dir",
            out,
        ],
    }


@pytest.mark.parametrize("command", ["asr_inference", "export_hf", "espnet_asr_inference"])
@pytest.mark.parametrize("bad", sorted(BAD_CONFIGS))
def test_a_bad_config_yaml_is_one_line_naming_it_and_the_key(asr_exp, wav_scp, tmp_path, capsys, command, bad):
    if command == "export_hf":
        pytest.importorskip("transformers")
    edit, key = BAD_CONFIGS[bad]
    exp = edited_copy(asr_exp, tmp_path / "exp", edit)
    code, err = call(command, capsys, *loading_commands(exp, tmp_path / "out", wav_scp)[command])
    assert code == 1
    one_error(err, exp / "config.yaml", key)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a process importing ONNX and ESPnet: about 15 s each
@pytest.mark.parametrize("bad", sorted(BAD_CONFIGS))
def test_export_onnx_names_config_yaml_and_the_key(asr_exp, tmp_path, bad):
    pytest.importorskip("onnxruntime")
    edit, key = BAD_CONFIGS[bad]
    exp = edited_copy(asr_exp, tmp_path / "exp", edit)
    result = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.export_onnx", str(exp), str(tmp_path / "onnx")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    one_error(result.stderr, exp / "config.yaml", key)
    assert not (tmp_path / "onnx").exists()


# 3. A token list of another length than the model's CTC layer: an error, not shifted letters.


def test_asr_inference_refuses_a_token_list_of_another_size_than_the_ctc_layer(asr_exp, wav_scp, tmp_path, capsys):
    exp = edited_copy(asr_exp, tmp_path / "exp", lambda c: c.update(token_list=TOKENS[:3] + TOKENS[4:]))
    code, err = call("asr_inference", capsys, "--asr_exp", exp, "--wav_scp", wav_scp, "--output_dir", tmp_path / "o")
    assert code == 1
    one_error(err, exp / MODEL_FILE, f"{len(TOKENS)} outputs", f"{exp / 'config.yaml'} has {len(TOKENS) - 1} tokens")
    assert not (tmp_path / "o").exists()


# 4. ESPnet's own decoder, wrapped: a hostile or truncated model file is one line, exit 1.


@pytest.mark.slow  # a process importing ESPnet's inference: about 15 s each
@pytest.mark.parametrize("damage", ["pickled_callable", "truncated"])
def test_espnet_asr_inference_refuses_a_bad_model_file_in_one_line(asr_exp, wav_scp, tmp_path, damage):
    model_file = tmp_path / "model.pth"
    if damage == "pickled_callable":
        state = torch.load(asr_exp / MODEL_FILE, weights_only=True)
        torch.save({**state, "encoder.x": Payload(tmp_path / "ran")}, model_file)
        expected = "refused to load"
    else:
        data = (asr_exp / MODEL_FILE).read_bytes()
        model_file.write_bytes(data[: len(data) // 2])
        expected = "cannot read checkpoint (truncated or corrupt?)"
    argv = loading_commands(asr_exp, tmp_path / "out", wav_scp)["espnet_asr_inference"]
    argv[argv.index(asr_exp / MODEL_FILE)] = model_file
    result = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.espnet_asr_inference", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    naming = [line for line in result.stderr.splitlines() if str(model_file) in line]
    assert len(naming) == 1 and expected in naming[0], result.stderr[-3000:]  # the error, and only it, names the file
    one_error(result.stderr, model_file, expected)
    assert not (tmp_path / "ran").exists() and not (tmp_path / "out").exists()


# 5. An output path that cannot be written is refused before any work.


@pytest.fixture
def no_loading(monkeypatch):
    """Loading the model is the work that must not start: record it if it does."""
    import espnet_distill.bin.asr_inference as asr_inference
    import espnet_distill.bin.export_hf as export_hf

    calls = []
    monkeypatch.setattr(asr_inference, "load_asr_model", lambda *a, **k: calls.append(a) or pytest.fail("loaded"))
    monkeypatch.setattr(export_hf, "export_hf", lambda *a, **k: calls.append(a) or pytest.fail("exported"))
    return calls


def unwritable(tmp_path: Path, where: str) -> Path:
    (tmp_path / "a_file").write_text("not a directory\n")
    return tmp_path / "a_file" if where == "existing_file" else tmp_path / "a_file" / "out"


@pytest.mark.parametrize("where", ["existing_file", "under_a_file"])
def test_asr_inference_refuses_an_output_dir_it_cannot_write_before_decoding(
    asr_exp, wav_scp, tmp_path, capsys, no_loading, where
):
    out = unwritable(tmp_path, where)
    code, err = call("asr_inference", capsys, "--asr_exp", asr_exp, "--wav_scp", wav_scp, "--output_dir", out)
    assert code == 1 and no_loading == []
    one_error(err, out, "is not a directory")
    assert (tmp_path / "a_file").read_text() == "not a directory\n"


@pytest.mark.parametrize("where", ["existing_file", "under_a_file"])
def test_export_hf_refuses_an_out_dir_it_cannot_write_before_exporting(asr_exp, tmp_path, capsys, no_loading, where):
    out = unwritable(tmp_path, where)
    code, err = call("export_hf", capsys, asr_exp, out)
    assert code == 1 and no_loading == []
    one_error(err, out, "is not a directory")
    assert (tmp_path / "a_file").read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no staging dir left
