"""The shell utilities shared by the recipes (egs/TEMPLATE/asr1/utils)."""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

UTILS = REPO_ROOT / "egs" / "TEMPLATE" / "asr1" / "utils"


def bash(script: str, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


PARSE_SCRIPT = textwrap.dedent(
    f"""\
    set -euo pipefail
    stage=1
    foo_bar=default
    use_gpu=false
    seed=""
    seeds=1
    _int_options="seed"
    _int_list_options="seeds"
    help_message="Usage: test [options] <a> <b>"
    . {UTILS}/parse_options.sh
    echo "stage=$stage foo_bar=$foo_bar use_gpu=$use_gpu seed=$seed rest=$*"
    [ "$seeds" = 1 ] || echo "seeds=$seeds"
    """
)


@pytest.mark.parametrize(
    "args, expected",
    [
        ("--stage 3 x y", "stage=3 foo_bar=default use_gpu=false seed= rest=x y"),
        ("--foo_bar hello --use_gpu true", "stage=1 foo_bar=hello use_gpu=true seed= rest="),
        ("--foo-bar=a=b -- --stage", "stage=1 foo_bar=a=b use_gpu=false seed= rest=--stage"),
        ("--foo_bar ''", "stage=1 foo_bar= use_gpu=false seed= rest="),
        ("--seed 7 --stage=10", "stage=10 foo_bar=default use_gpu=false seed=7 rest="),
        ("--seed ''", "stage=1 foo_bar=default use_gpu=false seed= rest="),
        # a value that merely looks like an option of another program is a value
        ("--foo_bar '--max_epoch 4'", "stage=1 foo_bar=--max_epoch 4 use_gpu=false seed= rest="),
        ("--foo_bar --max_epoch", "stage=1 foo_bar=--max_epoch use_gpu=false seed= rest="),
        # a list of integers, although the default is one integer
        ("--seeds '1 2 3'", "stage=1 foo_bar=default use_gpu=false seed= rest=\nseeds=1 2 3"),
        ("--seeds ''", "stage=1 foo_bar=default use_gpu=false seed= rest=\nseeds="),
    ],
)
def test_parse_options_sets_variables(tmp_path, args, expected):
    (tmp_path / "s.sh").write_text(PARSE_SCRIPT)
    result = bash(f"bash s.sh {args}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    "args, message",
    [
        ("--stgae 3", "unknown option --stgae"),
        ("--PATH /x", "unknown option --PATH"),
        ("--use_gpu yes", "option --use_gpu takes true or false, not 'yes'"),
        ("--stage", "option --stage needs a value"),
        ("--stage --foo_bar x", "option --stage needs a value (got the option --foo_bar)"),
        ("--foo_bar --use-gpu true", "option --foo_bar needs a value (got the option --use_gpu)"),
        ("--stage abc", "option --stage takes a non-negative integer, not 'abc'"),
        ("--stage 1.5", "option --stage takes a non-negative integer, not '1.5'"),
        ("--stage ''", "option --stage takes a non-negative integer, not ''"),
        ("--stage=-1", "option --stage takes a non-negative integer, not '-1'"),
        ("--seed x", "option --seed takes a non-negative integer, not 'x'"),
        ("--seed '1 2'", "option --seed takes a non-negative integer, not '1 2'"),
        ("--seeds '1,2'", "option --seeds takes integers separated by spaces, not '1,2'"),
        ("--seeds '1 x'", "option --seeds takes integers separated by spaces, not '1 x'"),
    ],
)
def test_parse_options_rejects_bad_options(tmp_path, args, message):
    (tmp_path / "s.sh").write_text(PARSE_SCRIPT)
    result = bash(f"bash s.sh {args}", tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_parse_options_help(tmp_path):
    (tmp_path / "s.sh").write_text(PARSE_SCRIPT)
    result = bash("bash s.sh --help", tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "Usage: test [options] <a> <b>"


def test_local_runner_runs_jobs_with_one_log_each(tmp_path):
    result = bash(f"{UTILS}/jobs/local.sh JOB=1:3 log/echo.JOB.log bash -c 'echo job JOB of 3 > out.JOB'", tmp_path)
    assert result.returncode == 0, result.stderr
    for i in (1, 2, 3):
        assert (tmp_path / f"out.{i}").read_text() == f"job {i} of 3\n"
        log = (tmp_path / "log" / f"echo.{i}.log").read_text()
        assert log.startswith("# bash -c") and "# Ended (code 0)" in log


def test_local_runner_names_the_failed_jobs_log(tmp_path):
    result = bash(
        f"{UTILS}/jobs/local.sh --max_jobs_run 2 JOB=1:4 log/t.JOB.log bash -c 'echo failing; [ JOB != 3 ]'",
        tmp_path,
    )
    assert result.returncode == 1
    assert "job 3 failed (exit code 1); see log/t.3.log" in result.stderr
    assert "1 of 4 jobs failed" in result.stderr
    assert "# Ended (code 1)" in (tmp_path / "log" / "t.3.log").read_text()


def test_local_runner_single_job_and_bad_range(tmp_path):
    assert bash(f"{UTILS}/jobs/local.sh log/one.log true", tmp_path).returncode == 0
    assert "# Ended (code 0)" in (tmp_path / "log" / "one.log").read_text()
    bad = bash(f"{UTILS}/jobs/local.sh JOB=3:1 log/x.JOB.log true", tmp_path)
    assert bad.returncode == 2 and "empty job range" in bad.stderr


def test_a_rerun_keeps_the_earlier_attempts_logs(tmp_path):
    runner = f"{UTILS}/jobs/local.sh log/train.log bash -c"
    assert bash(f"{runner} 'echo first attempt; exit 3'", tmp_path).returncode == 1
    assert bash(f"{runner} 'echo second attempt; exit 4'", tmp_path).returncode == 1
    assert bash(f"{runner} 'echo third attempt'", tmp_path).returncode == 0
    logs = {p.name: p.read_text() for p in (tmp_path / "log").iterdir()}
    assert sorted(logs) == ["train.log", "train.log.1", "train.log.2"]
    assert "first attempt" in logs["train.log.1"] and "# Ended (code 3)" in logs["train.log.1"]
    assert "second attempt" in logs["train.log.2"] and "# Ended (code 4)" in logs["train.log.2"]
    assert "third attempt" in logs["train.log"] and "# Ended (code 0)" in logs["train.log"]


def test_run_parallel_keeps_n_jobs_running_and_names_the_failed_ones(tmp_path):
    """utils/jobs/parallel.sh: the one scheduler of local.sh's jobs and of a stage's training jobs."""
    script = textwrap.dedent(
        f"""\
        set -euo pipefail
        . {UTILS}/jobs/parallel.sh
        job() {{
          touch "active.$1"
          local active=(active.*)  # not ls: a file that goes between its glob and its stat fails it
          echo "${{#active[@]}}" >>"counts"
          sleep 0.3
          rm "active.$1"
          [ "$1" != c ] && [ "$1" != e ]
        }}
        sleep 60 &  # another background job of the caller (a progress watcher): not waited for
        watcher=$!
        run_parallel 2 job a b c d e
        echo "failed: ${{parallel_failed[*]}}"
        run_parallel 0 job f g h
        echo "failed: ${{parallel_failed[*]}}"
        kill "${{watcher}}"
        """
    )
    result = bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["failed: c e", "failed: "]
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 8 and max(counts[:5]) == 2 and max(counts[5:]) == 3


def test_an_old_done_marker_with_the_same_key_becomes_the_finished_record(tmp_path):
    """Data dirs made before the content stamps (local/data.sh's data/.<corpus>.done) are not made again."""
    script = textwrap.dedent(
        f"""\
        set -euo pipefail
        . {UTILS}/stage_steps.sh
        stamp=(--arg corpus=v3/tiny_seed1 --output data/local/spk2voice)
        adopt_done_marker data/.mini_synth.done v3/tiny_seed1 data "${{stamp[@]}}"
        needs_run "data dirs" data "${{stamp[@]}}" || echo skipped
        """
    )
    (tmp_path / "data" / "local").mkdir(parents=True)
    (tmp_path / "data" / "local" / "spk2voice").write_text("spk1 train espeak en\n")
    (tmp_path / "data" / ".mini_synth.done").write_text("v3/tiny_seed1\n")
    result = bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "data dirs: data: skip: up to date" in result.stdout and "skipped" in result.stdout
    assert not (tmp_path / "data" / ".mini_synth.done").exists()
    # A marker of another corpus is only removed: the data dirs are made again.
    (tmp_path / "data" / ".stage_inputs.json").unlink()
    (tmp_path / "data" / ".mini_synth.done").write_text("v3/small_seed1\n")
    result = bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "data dirs: data: run: no record" in result.stdout and "skipped" not in result.stdout
    assert not (tmp_path / "data" / ".mini_synth.done").exists()


def test_path_sh_only_activates_and_names_the_installer_when_there_is_no_environment(tmp_path):
    path_sh = REPO_ROOT / "egs" / "TEMPLATE" / "asr1" / "path.sh"
    result = bash(f"set -e; ESPNET_DISTILL_ROOT={tmp_path} . {path_sh}; echo activated", tmp_path)
    assert result.returncode == 1 and "activated" not in result.stdout
    assert f"create it with: {tmp_path}/tools/install.sh" in result.stderr
    # With an environment it activates it and installs nothing.
    tools = tmp_path / "tools"
    (tools / "venv" / "bin").mkdir(parents=True)
    (tools / "venv" / "bin" / "python").write_text("#!/bin/sh\n")
    (tools / "venv" / "bin" / "python").chmod(0o755)
    (tools / "activate.sh").write_bytes((REPO_ROOT / "tools" / "activate.sh").read_bytes())
    (tools / "install.sh").write_text(f"#!/bin/sh\ntouch {tmp_path}/installed\n")
    (tools / "install.sh").chmod(0o755)
    result = bash(f"set -e; ESPNET_DISTILL_ROOT={tmp_path} . {path_sh}; command -v python", tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == str(tools / "venv" / "bin" / "python")
    assert not (tmp_path / "installed").exists()


def test_slurm_runner_submits_an_array(tmp_path):
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    # A stand-in for sbatch --wait --array A-B --wrap CMD: runs every task here.
    fake.write_text(
        textwrap.dedent(
            """\
            #!/usr/bin/env bash
            echo "$@" > sbatch.args
            while [ $# -gt 0 ]; do
              case "$1" in --wrap) wrap=$2; shift 2;; --array) array=${2%%%*}; shift 2;; --wait) shift;; *) shift 2;; esac
            done
            for ((i=${array%-*}; i<=${array#*-}; i++)); do SLURM_ARRAY_TASK_ID=$i bash -c "$wrap"; done
            """
        )
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = bash(
        f"{UTILS}/jobs/slurm.sh --mem 2G --gpu 1 JOB=1:3 log/s.JOB.log bash -c 'echo \"it'\\''s JOB\"; [ JOB != 2 ]'",
        tmp_path,
        env,
    )
    assert result.returncode == 1
    assert "job 2 failed (exit code 1); see log/s.2.log" in result.stderr
    assert "it's 1" in (tmp_path / "log" / "s.1.log").read_text()
    args = (tmp_path / "sbatch.args").read_text()
    assert "--array 1-3" in args and "--mem 2G" in args and "--gres gpu:1" in args


def test_shell_wrappers_convert_and_split(tmp_path):
    (tmp_path / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")
    result = bash(
        f"{UTILS}/utt2spk_to_spk2utt.sh utt2spk spk2utt && {UTILS}/spk2utt_to_utt2spk.sh spk2utt back && "
        f"{UTILS}/split_scp.sh --utt2spk utt2spk utt2spk p1 p2",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "spk2utt").read_text() == "a a-1 a-2\nb b-1\n"
    assert (tmp_path / "back").read_text() == (tmp_path / "utt2spk").read_text()
    assert (tmp_path / "p1").read_text() == "a-1 a\na-2 a\n" and (tmp_path / "p2").read_text() == "b-1 b\n"


def test_installer_lists_what_is_missing(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("install.sh", "requirements.txt"):
        (tools / name).write_bytes((REPO_ROOT / "tools" / name).read_bytes())
    (tools / "install.sh").chmod(0o755)
    (tmp_path / "setup.py").write_text("")
    result = bash("tools/install.sh", tmp_path, {"PYTHON": "/nonexistent/python3"})
    assert result.returncode == 1
    assert "missing:" in result.stderr and "Python 3.11 or newer (/nonexistent/python3 not found" in result.stderr
    assert not (tools / "venv").exists()
