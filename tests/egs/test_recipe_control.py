"""What a recipe's run.sh does around its stages: stage ranges, the teacher's checksum, one run at a time,
and stopping its jobs when it is stopped.  Each test runs the mini recipe's real run.sh in a copy."""

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO_ROOT, write_wav
from tests.egs.teacher_files import write_fairseq_teacher

MINI = REPO_ROOT / "egs" / "mini_synth" / "asr1"
RELEASED = MINI / "pretrained" / "hubert_mini.pt"


def _env():
    return {**os.environ, "ESPNET_DISTILL_ROOT": str(REPO_ROOT)}


def run(args, cwd, timeout=300):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=_env(), timeout=timeout)


@pytest.fixture
def recipe(tmp_path):
    """The mini recipe copied, with a one-utterance dev set (what the teacher check runs on)."""
    target = tmp_path / "asr1"
    shutil.copytree(MINI, target, symlinks=False, ignore=shutil.ignore_patterns("data", "fbank", "exp", "downloads"))
    dev = target / "data" / "dev"
    dev.mkdir(parents=True)
    rng = np.random.default_rng(0)
    wav = write_wav(tmp_path / "u1.wav", (rng.standard_normal(16000) * 3000).astype(np.int16))
    (dev / "wav.scp").write_text(f"spk-u1 {wav}\n")
    return target


@pytest.fixture
def failing_installer(tmp_path):
    """A checkout whose tools/install.sh fails (and leaves a mark): what a machine that cannot be set up gives."""
    root = tmp_path / "root"
    (root / "tools").mkdir(parents=True)
    installer = root / "tools" / "install.sh"
    installer.write_text(f"#!/bin/sh\necho installing >&2\ntouch {tmp_path / 'installed'}\nexit 1\n")
    installer.chmod(0o755)
    # No venv on PATH either: the usage needs nothing that tools/install.sh makes.
    env = {**os.environ, "ESPNET_DISTILL_ROOT": str(root), "PATH": "/usr/bin:/bin"}
    return env, tmp_path / "installed"


@pytest.mark.parametrize(
    "recipe_dir, command, usage",
    [
        ("mini_synth/asr1", ["./run.sh", "--help"], "Usage: ./distill_asr.sh [options]"),
        ("mini_synth/asr1", ["./run.sh", "--stage", "5", "-h"], "Usage: ./distill_asr.sh [options]"),
        ("mini_synth/asr1", ["local/run_study.sh", "--help"], "Usage: local/run_study.sh [options]"),
        ("librispeech/asr1", ["./run.sh", "--help"], "Usage: ./distill_asr.sh [options]"),
        ("mini_synth/ssl1", ["./run.sh", "--help"], "Usage: ./run.sh [options]"),
    ],
)
def test_help_prints_the_usage_without_setting_anything_up(failing_installer, recipe_dir, command, usage):
    env, installed = failing_installer
    result = subprocess.run(
        command, cwd=REPO_ROOT / "egs" / recipe_dir, capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == usage and "Options:" in result.stdout
    assert not installed.exists() and result.stderr == ""


@pytest.mark.parametrize("recipe_dir", ["mini_synth/asr1", "librispeech/asr1", "mini_synth/ssl1"])
def test_any_other_command_sets_up_the_machine_first(failing_installer, recipe_dir):
    env, installed = failing_installer
    result = subprocess.run(
        ["./run.sh", "--stop_stage", "1"],
        cwd=REPO_ROOT / "egs" / recipe_dir,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1 and installed.exists() and "installing" in result.stderr
    assert "Stage" not in result.stdout


def test_a_stage_range_that_selects_no_stage_is_an_error(recipe):
    # (with the study's list of seeds, which parses: the range is what stops the run)
    for args in (
        ["--stage", "99"],
        ["--stage", "3", "--stop_stage", "2"],
        ["--stop_stage", "0", "--superb_seeds", "1 2 3"],
    ):
        result = run(["./run.sh", *args], recipe)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "selects no stage (the stages are 1 to 11)" in result.stderr, args
        assert "Successfully finished" not in result.stdout and "Stage" not in result.stdout


def _students(configs, frontends, cwd):
    """distill_students (utils/distill_students.sh, sourced alone as distill_asr.sh sources it) in ``cwd``."""
    script = MINI / "utils" / "distill_students.sh"
    return run(
        ["bash", "-c", '. "$1"; distill_students "$2" "$3"', "distill_students", script, configs, frontends], cwd
    )


def test_the_students_are_each_config_with_each_frontend(tmp_path):
    """The one list stage 5 distills and stages 7-10 read: <config> with its own front-end, <config>_<F> else."""
    (tmp_path / "a.yaml").write_text("frontend: wav_cnn\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("frontend: fbank\n")
    (tmp_path / "c.yaml").write_text("seed: 1\n")  # no front-end: distill_train's default, wav_cnn
    result = _students("a.yaml b.yaml", "wav_cnn fbank", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "a a.yaml wav_cnn - student",
        "a_fbank a.yaml fbank - student",
        "b_wav_cnn b.yaml wav_cnn - student",
        "b b.yaml fbank - student",
    ]
    # No front-ends: each config's own (the recipes' names before --distill_frontends).
    result = _students("a.yaml b.yaml c.yaml", "", tmp_path)
    assert result.stdout.splitlines() == [
        "a a.yaml wav_cnn - student",
        "b b.yaml fbank - student",
        "c c.yaml wav_cnn - student",
    ]
    assert _students("c.yaml", "fbank wav_cnn", tmp_path).stdout.splitlines() == [
        "c_fbank c.yaml fbank - student",
        "c c.yaml wav_cnn - student",
    ]
    # Mistakes: an unknown front-end, two students of one name, a config that is not there.
    result = _students("a.yaml", "wav_cnn mel", tmp_path)
    assert result.returncode == 1 and "--distill_frontends takes wav_cnn and fbank, not 'mel'" in result.stderr
    result = _students("a.yaml a.yaml", "", tmp_path)
    assert result.returncode == 1 and "two students named a " in result.stderr
    result = _students("a.yaml missing.yaml", "", tmp_path)
    assert result.returncode == 1 and "missing.yaml" in result.stderr


def test_a_student_that_starts_from_another_is_listed_after_its_start(tmp_path):
    """A pruned student's final distillation (init_student: exp/distill_<D>) starts from the student of D.yaml
    beside it, with its own front-end only; a start not among the configs is added with the role "start"."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "p.yaml").write_text("frontend: wav_cnn\n")
    (conf / "f.yaml").write_text("init_student: exp/distill_p\n")
    (conf / "a.yaml").write_text("frontend: wav_cnn\n")
    result = _students("conf/f.yaml", "wav_cnn fbank", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["p conf/p.yaml wav_cnn - start", "f conf/f.yaml wav_cnn p student"]
    # A pruning config and the one that starts from it keep their own front-end.
    (conf / "p.yaml").write_text("frontend: wav_cnn\nmodel_conf:\n    prune_conf: {target_ratio: 0.25}\n")
    result = _students("conf/f.yaml conf/a.yaml", "wav_cnn fbank", tmp_path)
    assert result.stdout.splitlines() == [
        "p conf/p.yaml wav_cnn - start",
        "f conf/f.yaml wav_cnn p student",
        "a conf/a.yaml wav_cnn - student",
        "a_fbank conf/a.yaml fbank - student",
    ]
    assert "conf/f.yaml: a pruned student keeps the teacher's front-end (wav_cnn); not distilled with fbank" in (
        result.stderr
    )
    # Listed too, the start is a student of its own (fine-tuned and evaluated), once.
    result = _students("conf/p.yaml conf/f.yaml", "", tmp_path)
    assert result.stdout.splitlines() == ["p conf/p.yaml wav_cnn - student", "f conf/f.yaml wav_cnn p student"]
    # Mistakes: a start that is not a config beside it, a chain of starts.
    (conf / "g.yaml").write_text("init_student: exp/pruned\n")
    result = _students("conf/g.yaml", "", tmp_path)
    assert result.returncode == 1 and "init_student: exp/pruned is not exp/distill_<D>" in result.stderr
    (conf / "h.yaml").write_text("init_student: exp/distill_f\n")
    result = _students("conf/h.yaml", "", tmp_path)
    assert result.returncode == 1 and "which starts from another student: one start only" in result.stderr


def test_a_wrong_distill_frontend_stops_the_run_before_any_stage(recipe):
    result = run(["./run.sh", "--stage", "5", "--distill_frontends", "wav_cnn mel"], recipe)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "option --distill_frontends takes wav_cnn and fbank, not 'mel'" in result.stderr
    assert "Stage" not in result.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        (["--lm_weights", "0.3 x"], "option --lm_weights takes positive numbers, not 'x'"),
        (["--lm_weights", "0"], "option --lm_weights takes positive numbers, not '0'"),
        (["--lm_weights", ""], "option --lm_weights needs at least one weight"),
        (["--lm_beam_size", "1"], "option --lm_beam_size must be above 1"),
        (["--lm_tune_metric", "ter"], "option --lm_tune_metric takes cer or wer, not 'ter'"),
    ],
)
def test_wrong_lm_options_stop_the_run_before_any_stage(recipe, options, message):
    result = run(["./run.sh", "--stage", "6", "--use_lm", "true", *options], recipe)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Stage" not in result.stdout


def test_decoding_with_the_lm_needs_the_lm_first(recipe):
    result = run(["./run.sh", "--stage", "8", "--stop_stage", "8", "--use_lm", "true"], recipe)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "no trained LM in exp/lm_char; run stage 6 with --use_lm true first" in result.stdout


def _teacher_yaml(recipe):
    return yaml.safe_load((recipe / "exp" / "teacher" / "teacher.yaml").read_text())


@pytest.mark.slow  # loads the teacher four times
def test_the_teachers_checksum_travels_with_its_path(recipe, tmp_path):
    stage4 = ["./run.sh", "--stage", "4", "--stop_stage", "4"]
    # The released teacher: checked against pretrained/hubert_mini.pt.sha256, which teacher.yaml keeps.
    result = run(stage4, recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    released_sha = (RELEASED.parent / "hubert_mini.pt.sha256").read_text().split()[0]
    assert _teacher_yaml(recipe)["teacher_conf"]["sha256"] == released_sha
    # A user's teacher in another format: not the released one, and not refused for it.
    user = write_fairseq_teacher(RELEASED, tmp_path / "hubert_base_ls960.pt")
    result = run([*stage4, "--teacher_format", "fairseq", "--teacher_path", str(user)], recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    conf = _teacher_yaml(recipe)
    assert conf["teacher"] == "fairseq" and conf["teacher_conf"]["path"] == str(user)
    assert "sha256" not in conf["teacher_conf"]
    # ... checked when the user gives a checksum, or keeps one beside the file.
    result = run(
        [*stage4, "--teacher_format", "fairseq", "--teacher_path", str(user), "--teacher_sha256", "00ff"], recipe
    )
    assert result.returncode == 1 and "is not the expected 00ff" in result.stdout + result.stderr
    (tmp_path / "hubert_base_ls960.pt.sha256").write_text("abcd  hubert_base_ls960.pt\n")
    result = run([*stage4, "--teacher_format", "fairseq", "--teacher_path", str(user)], recipe)
    assert result.returncode == 1 and "is not the expected abcd" in result.stdout + result.stderr


@contextlib.contextmanager
def _holding(path: Path, shared: bool):
    """Hold ``path`` as flock(1) does for another run.sh (this test's own open file, its own lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def test_one_run_of_a_recipe_dir_at_a_time(recipe):
    lock = recipe / "exp" / ".run.lock"
    with _holding(lock, shared=False):
        for args in (["--stop_stage", "1"], ["--stage", "5", "--seed", "2"]):
            result = run(["./run.sh", *args], recipe)
            assert result.returncode == 1, args
            assert "another run of this recipe is running" in result.stderr and "exp/.run.lock" in result.stderr
            assert "Stage" not in result.stdout
    # Repeats with another seed run beside each other: a seed run passes a shared holder (then
    # fails for want of data, which says it got past the lock); a plain run does not.
    with _holding(lock, shared=True):
        result = run(["./run.sh", "--stage", "6", "--stop_stage", "6", "--seed", "3"], recipe)
        assert "another run" not in result.stderr and "Stage 6" in result.stdout
        result = run(["./run.sh", "--stop_stage", "1"], recipe)
        assert result.returncode == 1 and "another run of this recipe is running" in result.stderr
    with _holding(recipe / "exp" / ".run_seed3.lock", shared=False):
        result = run(["./run.sh", "--stage", "6", "--stop_stage", "6", "--seed", "3"], recipe)
        assert result.returncode == 1 and "another run with --seed 3 is running" in result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


@pytest.mark.slow
def test_stopping_run_sh_stops_its_stages_and_their_jobs(recipe, tmp_path):
    pids = tmp_path / "pids"
    # Stage 1's local/data.sh stands for a long job: it starts a child and waits on it.
    (recipe / "local" / "data.sh").write_text(
        f"#!/usr/bin/env bash\nsleep 300 &\necho $$ $! >{pids}\nwait\n", encoding="utf-8"
    )
    proc = subprocess.Popen(
        ["./run.sh", "--stop_stage", "1"],
        cwd=recipe,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (pids.exists() and pids.read_text().strip()) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    started = [int(p) for p in pids.read_text().split()]
    assert all(_alive(p) for p in started)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "stopping" in err
    deadline = time.time() + 15
    while any(_alive(p) for p in started) and time.time() < deadline:
        time.sleep(0.2)
    left = [p for p in started if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, "run.sh was stopped but its jobs ran on"
    # The lock went with them: the next run is not refused.
    result = run(["./run.sh", "--stage", "6", "--stop_stage", "6"], recipe)
    assert "another run" not in result.stderr and "Stage 6" in result.stdout
