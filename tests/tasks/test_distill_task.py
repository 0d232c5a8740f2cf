"""distill_train on ESPnet's trainer at the tiny size: configs, export, resume after a kill, DDP."""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_distill.distill.export import build_student, load_student
from espnet_distill.recipe.speech_shape import write_speech_shape
from espnet_distill.tasks.distill import DistillTask
from espnet_distill.utils.checkpoint import load_checkpoint, training_checkpoint_globals
from tests.conftest import REPO_ROOT, tiny_batch

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

CONFIGS = sorted(REPO_ROOT.glob("egs/*/asr1/conf/distill/*.yaml"))
TINY_TRAINING = [
    "--batch_type",
    "numel",
    "--batch_bins",
    "150000",
    "--num_workers",
    "0",
    "--optim",
    "adamw",
    "--optim_conf",
    "lr=0.001",
    "--scheduler",
    "none",
    "--seed",
    "1",
]


@pytest.fixture(scope="module")
def shapes(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    for name in ("train", "dev"):
        write_speech_shape(tiny_corpus["data"] / name, root / name / "speech_shape")
    return root


def data_args(tiny_corpus, shapes):
    data = tiny_corpus["data"]
    return [
        "--train_data_path_and_name_and_type",
        f"{data}/train/wav.scp,speech,sound",
        "--train_shape_file",
        str(shapes / "train" / "speech_shape"),
        "--valid_data_path_and_name_and_type",
        f"{data}/dev/wav.scp,speech,sound",
        "--valid_shape_file",
        str(shapes / "dev" / "speech_shape"),
    ]


def distill_cmd(config, teacher, out_dir, *extra):
    return [
        sys.executable,
        "-m",
        "espnet_distill.bin.distill_train",
        "--config",
        str(config),
        "--teacher",
        "torchaudio",
        "--teacher_conf",
        f"path={teacher}",
        "--output_dir",
        str(out_dir),
        *extra,
    ]


def run_ok(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def optimizer_steps(exp_dir: Path) -> int:
    states = load_checkpoint(exp_dir / "checkpoint.pth", extra_globals=training_checkpoint_globals())
    steps = {int(s["step"]) for s in states["optimizers"][0]["state"].values()}
    assert len(steps) == 1
    return steps.pop()


def dry_run(config, tiny_teacher_path, out, *extra):
    """distill_train --dry_run of ``config`` against the 3-layer tiny teacher; its resolved config.yaml."""
    np.savez(out / "feats_stats.npz", count=10, sum=np.zeros(80), sum_square=np.full(80, 10.0))
    data = yaml.safe_load(config.read_text())
    if (data.get("head_conf") or {}).get("student_layers"):  # DPHuBERT's [0, 4, 8, 12] of 12 layers
        extra = ("--head_conf", "student_layers=[0,3]", *extra)
    DistillTask.main(
        cmd=[
            "--config",
            str(config),
            "--teacher",
            "torchaudio",
            "--teacher_conf",
            f"path={tiny_teacher_path}",
            "--dry_run",
            "true",
            "--output_dir",
            str(out),
            "--fbank_stats",
            str(out / "feats_stats.npz"),
            *extra,
        ]
    )
    return yaml.safe_load((out / "config.yaml").read_text())


def start_student(config, tiny_teacher_path, out):
    """A student dir for a config that starts from another (init_student: exp/distill_<D>): the structure of
    <D>.yaml beside it, resolved against the teacher, with random weights."""
    start = config.parent / f"{Path(yaml.safe_load(config.read_text())['init_student']).name[len('distill_') :]}.yaml"
    (out / "start").mkdir(parents=True)
    resolved = dry_run(start, tiny_teacher_path, out / "start")
    description = {key: resolved[key] for key in ("frontend", "frontend_conf", "encoder", "encoder_conf")}
    frontend, encoder = build_student(description)
    state = {f"frontend.{k}": v for k, v in frontend.state_dict().items()}
    state.update({f"encoder.{k}": v for k, v in encoder.state_dict().items()})
    torch.save(state, out / "start" / "student.pth")
    (out / "start" / "student.yaml").write_text(yaml.safe_dump(description))
    return out / "start"


@pytest.mark.parametrize("frontend", ["wav_cnn", "fbank"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parts[-5]}/{p.name}")
def test_every_distill_config_builds_its_model_in_a_dry_run(config, frontend, tiny_teacher_path, tmp_path):
    """Each config with each front-end, as the recipes' --distill_frontends runs it (--frontend after --config);
    a pruned student (a pruning run, or a config that starts from one) keeps the teacher's front-end."""
    data = yaml.safe_load(config.read_text())
    extra = ["--frontend", frontend]
    if (data.get("model_conf") or {}).get("prune_conf") or data.get("init_student"):
        if frontend != data["frontend"]:
            pytest.skip("a pruned student keeps the teacher's front-end: the recipes do not swap it")
        if data.get("init_student"):
            extra += ["--init_student", str(start_student(config, tiny_teacher_path, tmp_path))]
    resolved = dry_run(config, tiny_teacher_path, tmp_path, *extra)
    assert resolved["frontend"] == frontend
    assert "preset" not in resolved["encoder_conf"] and resolved["encoder_conf"]["num_layers"] >= 1
    assert resolved["frontend_conf"]["output_dim"] == resolved["encoder_conf"]["output_size"]


def test_training_writes_a_student_that_loads_as_frontend_and_encoder(tiny_corpus, shapes, tiny_teacher_path, tmp_path):
    config = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/shallow_wide_reg_kl.yaml"
    exp = tmp_path / "exp"
    run_ok(
        distill_cmd(
            config,
            tiny_teacher_path,
            exp,
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--max_epoch",
            "2",
            "--num_iters_per_epoch",
            "3",
        )
    )
    assert optimizer_steps(exp) == 6
    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    assert resolved["encoder_conf"]["num_layers"] == 2 and resolved["encoder_conf"]["output_size"] == 64
    frontend, encoder, description = load_student(exp)
    assert description["params"]["total"] == sum(p.numel() for p in [*frontend.parameters(), *encoder.parameters()])
    # The exported student is the trained model's front-end and encoder.
    state = load_checkpoint(exp / "valid.loss.ave.pth")
    model = DistillTask.build_model(argparse.Namespace(**{**resolved, "init_from_teacher": []}))
    model.load_state_dict(state)
    model.eval()
    waves, lengths = tiny_batch(tiny_corpus, 2, "dev")
    with torch.no_grad():
        expected, _ = model.student_states(waves, lengths)
        feats, flens = frontend(waves, lengths)
        ours, _, _ = encoder(feats, flens)
    torch.testing.assert_close(ours, encoder.final_output(expected))
    summary = json.loads((exp / "distill_summary.json").read_text())
    assert summary["train_steps"] == 6 and summary["audio_seconds_per_second"] > 0
    valid = summary["final"]["valid"]
    assert {"regression", "discriminative", "loss", "l1_layer1", "cos_layer3"} <= set(valid)
    assert (exp / "tensorboard" / "train").is_dir() and len((exp / "throughput.jsonl").read_text().splitlines()) == 2


def test_a_killed_run_resumes_and_finishes_with_the_same_number_of_steps(
    tiny_corpus, shapes, tiny_teacher_path, tmp_path
):
    config = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/deep_thin_reg.yaml"
    exp = tmp_path / "exp"
    cmd = distill_cmd(
        config,
        tiny_teacher_path,
        exp,
        *data_args(tiny_corpus, shapes),
        *TINY_TRAINING,
        "--max_epoch",
        "4",
        "--num_iters_per_epoch",
        "3",
        "--resume",
        "true",
    )
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (exp / "2epoch.pth").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # a crash: no chance to clean up
    process.wait()
    assert not (exp / "student.pth").exists(), "the run finished before it could be killed"
    done = load_checkpoint(exp / "checkpoint.pth", extra_globals=training_checkpoint_globals())["reporter"]["epoch"]
    assert 1 <= done < 4
    result = run_ok(cmd)
    assert "resumed from" in result.stderr
    assert optimizer_steps(exp) == 4 * 3
    assert (
        load_checkpoint(exp / "checkpoint.pth", extra_globals=training_checkpoint_globals())["reporter"]["epoch"] == 4
    )
    assert (exp / "student.pth").is_file()


def test_two_process_cpu_ddp_ends_with_identical_weights(tiny_corpus, shapes, tiny_teacher_path, tmp_path):
    config = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/shallow_wide_reg.yaml"
    exp = tmp_path / "exp"
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        "-m",
        "espnet_distill.bin.distill_train",
    ]
    cmd = (
        launcher
        + distill_cmd(config, tiny_teacher_path, exp)[3:]
        + [
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--max_epoch",
            "2",
            "--num_iters_per_epoch",
            "2",
            "--ngpu",
            "0",
            "--dist_backend",
            "gloo",
            "--multiprocessing_distributed",
            "false",
        ]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ok(cmd, env=env, timeout=300)
    check = json.loads((exp / "ddp_check.json").read_text())
    assert check["world_size"] == 2 and check["identical"] is True
    assert check["checksums"][0] == check["checksums"][1]
    assert (exp / "student.pth").is_file() and optimizer_steps(exp) == 4


def dump_cmd(teacher, root, data, *configs, extra=()):
    return [
        sys.executable,
        "-m",
        "espnet_distill.bin.dump_teacher_targets",
        "--teacher",
        "torchaudio",
        "--teacher_conf",
        f"{{path: {teacher}}}",
        *[arg for config in configs for arg in ("--distill_config", str(config))],
        "--data_dir",
        str(data / "train"),
        "--data_dir",
        str(data / "dev"),
        "--output_dir",
        str(root),
        *extra,
    ]


def test_distilling_from_stored_targets(tiny_corpus, shapes, tiny_teacher_path, tmp_path):
    """One dump serves two students (their layers' union, the KL's top k); training reads it through ESPnet's
    data loader and the trainer; targets of another teacher are refused by name before training."""
    kl = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/shallow_wide_reg_kl.yaml"
    deep = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/deep_thin_reg.yaml"
    root = tmp_path / "targets"
    run_ok(
        dump_cmd(tiny_teacher_path, root, tiny_corpus["data"], kl, deep, extra=("--topk", "5", "--shard_utts", "16"))
    )
    manifest = json.loads((root / "train" / "manifest.json").read_text())
    assert manifest["names"] == ["teacher_hidden", "teacher_topk_logprob", "teacher_topk_index"]
    utterances = len((tiny_corpus["data"] / "train" / "wav.scp").read_text().splitlines())
    assert manifest["targets"]["dtype"] == "float16" and manifest["shards"] == -(-utterances // 16) > 1
    assert (root / "dev" / "manifest.json").is_file()
    training = [*data_args(tiny_corpus, shapes), *TINY_TRAINING, "--max_epoch", "1", "--num_iters_per_epoch", "3"]
    for config in (kl, deep):
        exp = tmp_path / config.stem
        result = run_ok(distill_cmd(config, tiny_teacher_path, exp, *training, "--teacher_targets", str(root)))
        assert "training on stored teacher targets" in result.stderr
        assert optimizer_steps(exp) == 3
        valid = json.loads((exp / "distill_summary.json").read_text())["final"]["valid"]
        assert np.isfinite(valid["loss"]) and ("discriminative" in valid) == (config == kl)
        assert yaml.safe_load((exp / "config.yaml").read_text())["teacher_targets"] == str(root)
    other = tmp_path / "other_teacher.pt"
    checkpoint = torch.load(tiny_teacher_path, weights_only=True)
    first = next(iter(checkpoint["model"]))
    checkpoint["model"][first] = checkpoint["model"][first] + 0.01
    torch.save(checkpoint, other)
    refused = subprocess.run(
        distill_cmd(deep, other, tmp_path / "refused", *training, "--teacher_targets", str(root)),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "are of another teacher" in refused.stderr
    assert not (tmp_path / "refused" / "checkpoint.pth").exists()


def test_one_dump_serves_every_student_of_the_mini_study(tiny_corpus, tiny_teacher_path, tmp_path):
    """The study's students (local/run_study.sh --teacher_targets true): every config of conf/distill with each
    front-end (a pruned student with its own, its start included), one dump; each builds against it."""
    conf_dir = REPO_ROOT / "egs/mini_synth/asr1/conf/distill"
    students = []
    for config in sorted(conf_dir.glob("*.yaml")):
        data = yaml.safe_load(config.read_text())
        pruned = (data.get("model_conf") or {}).get("prune_conf") or data.get("init_student")
        students += [f"{config}"] if pruned else [f"{config}:wav_cnn", f"{config}:fbank"]
    np.savez(tmp_path / "feats_stats.npz", count=10, sum=np.zeros(80), sum_square=np.full(80, 10.0))
    root = tmp_path / "targets"
    extra = ["--fbank_stats", str(tmp_path / "feats_stats.npz"), "--topk", "8"]
    dump = dump_cmd(tiny_teacher_path, root, tiny_corpus["data"], extra=extra)
    for student in students:
        dump += ["--distill_config", student]
    run_ok(dump)
    manifest = json.loads((root / "train" / "manifest.json").read_text())
    assert manifest["targets"]["projected"] and manifest["targets"]["codewords"]["k"] == 8
    for student in students:
        config, _, frontend = student.partition(":")
        argv = ["--config", config, "--teacher", "torchaudio", "--teacher_conf", f"path={tiny_teacher_path}"]
        argv += ["--fbank_stats", str(tmp_path / "feats_stats.npz"), "--output_dir", "unused", "--init_student", "none"]
        argv += ["--teacher_targets", str(root), *data_args(tiny_corpus, tmp_path)]
        if frontend:
            argv += ["--frontend", frontend]
        args = DistillTask.get_parser().parse_args(argv)
        model = DistillTask.build_model(args)
        assert model.stored is not None and set(model.heads.teacher_layers) <= set(manifest["targets"]["layers"])
