"""egs/mini_synth/ssl1 at the tiny size, in a temporary copy: two HuBERT iterations and the release."""

import hashlib
import json
import os
import shlex
import shutil
import subprocess

import pytest
import torch
import yaml

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.teacher import CheckpointError, load_teacher
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

TINY_PRETRAIN = {
    "conv_channels": 16,
    "encoder_layers": 2,
    "encoder_dim": 32,
    "encoder_heads": 2,
    "encoder_ffn": 64,
    "pos_conv_kernel": 8,
    "pos_conv_groups": 2,
    "final_dim": 16,
    "max_steps": 4,
    "valid_interval": 2,
    "warmup_steps": 1,
    "batch_seconds": 20.0,
    "bf16": True,
}


def run(cmd, cwd, check=True):
    env = {**os.environ, "ESPNET_DISTILL_ROOT": str(REPO_ROOT)}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def ssl1(tmp_path_factory):
    """Both mini recipes copied (ssl1 shares asr1's audio and releases into asr1/pretrained), ssl1 run at the tiny size."""
    root = tmp_path_factory.mktemp("mini_synth")
    for recipe in ("asr1", "ssl1"):
        shutil.copytree(
            REPO_ROOT / "egs" / "mini_synth" / recipe,
            root / recipe,
            symlinks=False,
            ignore=shutil.ignore_patterns("data", "fbank", "exp", "downloads", "pretrained"),
        )
    confs = root / "ssl1" / "conf"
    for name in ("hubert_pretrain_iter1.yaml", "hubert_pretrain_iter2.yaml"):
        config = yaml.safe_load((confs / name).read_text())
        (confs / name).write_text(yaml.safe_dump({**config, **TINY_PRETRAIN}))
    for name, layer in (("hubert_kmeans_iter1.yaml", None), ("hubert_kmeans_iter2.yaml", 2)):
        config = {**yaml.safe_load((confs / name).read_text()), "num_clusters": 6}
        if layer is not None:
            config["layer"] = layer
        (confs / name).write_text(yaml.safe_dump(config))
    result = run(["./run.sh", "--nj", "2", "--local_data_opts", "--size tiny"], root / "ssl1")
    return root, result


def test_two_iterations_and_a_release_that_loads_checked(ssl1):
    root, result = ssl1
    exp = root / "ssl1" / "exp"
    assert "Successfully finished" in result.stdout
    # The audio is synthesized once, under asr1's downloads.
    wav = next(iter(read_kaldi_map(root / "ssl1" / "data" / "ssl" / "wav.scp").values()))
    assert str(root / "asr1" / "downloads" / "mini_synth") in wav
    iter2 = json.loads((exp / "kmeans_iter2" / "summary.json").read_text())
    assert iter2["features"] == "exp/pretrain_iter1/teacher.pt layer 2" and iter2["num_clusters"] == 6
    results = json.loads((exp / "pretrain_iter2" / "results.json").read_text())
    assert results["finished"] and results["config"]["bf16"] is True
    released = root / "asr1" / "pretrained" / "hubert_mini.pt"
    digest = hashlib.sha256(released.read_bytes()).hexdigest()
    assert (released.parent / "hubert_mini.pt.sha256").read_text() == f"{digest}  hubert_mini.pt\n"
    info = json.loads((released.parent / "hubert_mini.json").read_text())
    assert (
        info["sha256"] == digest and len(info["iterations"]) == 2 and info["layers"] == 2 and "cores" in info["machine"]
    )
    assert shlex.split(info["made_by"]) == ["./run.sh", "--nj", "2", "--local_data_opts", "--size tiny"]
    # float16 on disk, the iteration-2 teacher's weights to float16 precision, loaded through the checked loader.
    teacher = load_teacher("torchaudio", path=str(released), sha256=digest)
    source = load_teacher("torchaudio", path=str(exp / "pretrain_iter2" / "teacher.pt"))
    assert (
        torch.load(released, weights_only=True)["model"][
            "wav2vec2.encoder.transformer.layers.0.attention.k_proj.weight"
        ].dtype
        == torch.float16
    )
    for (name, ours), theirs in zip(teacher.model.state_dict().items(), source.model.state_dict().values()):
        assert ours.dtype == torch.float32, name
        torch.testing.assert_close(ours, theirs, atol=2e-3, rtol=1e-3)
    with pytest.raises(CheckpointError, match="is not the expected 00ff"):
        load_teacher("torchaudio", path=str(released), sha256="00ff")
    # A rerun redoes nothing.
    again = run(["./run.sh", "--stage", "2", "--stop_stage", "5", "--nj", "2"], root / "ssl1")
    assert again.stdout.count("skip: up to date") == 4 and ": run: " not in again.stdout
