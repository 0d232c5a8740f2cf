"""Stage records: a step reruns exactly when its arguments or the content of its inputs changed."""

import json
import os
import subprocess
import sys

import pytest

from espnet_distill.utils.provenance import STAMP, begin, finish, read_stamp


@pytest.fixture
def step(tmp_path):
    """A step reading a config and an upstream file, writing out/result."""
    (tmp_path / "conf.yaml").write_text("lr: 0.1\n")
    (tmp_path / "upstream.txt").write_text("data\n")
    out = tmp_path / "out"

    def decide(record=True, clear=False, **args):
        return begin(
            out,
            args or {"extra": ""},
            {"config": tmp_path / "conf.yaml", "upstream": tmp_path / "upstream.txt"},
            outputs=[out / "result"],
            clear=clear,
            record=record,
        )

    def run_it(**args):
        decision = decide(**args)
        if decision.run:
            (out / "result").write_text("done\n")
            finish(out)
        return decision

    return tmp_path, out, decide, run_it


def test_first_run_then_skip(step):
    _, out, decide, run_it = step
    assert str(run_it()) == "run: no record of an earlier run"
    assert str(decide()).startswith("skip: up to date")
    assert read_stamp(out)["finished"]["run_id"]


def test_touching_an_input_is_not_a_change_and_its_new_time_is_remembered(step):
    root, out, decide, run_it = step
    run_it()
    os.utime(root / "conf.yaml", (1e9, 1e9))
    os.utime(root / "upstream.txt", (1e9, 1e9))
    assert not decide().run
    assert read_stamp(out)["inputs"]["config"]["mtime_ns"] == 10**18
    # Once remembered, the file is not read again: a same-size, same-time edit goes unnoticed (as in make).
    assert not decide().run


def test_an_edited_input_or_a_changed_argument_reruns_naming_it(step):
    root, _, decide, run_it = step
    run_it()
    (root / "conf.yaml").write_text("lr: 0.2\n")
    decision = decide()
    assert decision.run and decision.reason == f"config {root / 'conf.yaml'} changed since the finished run"
    run_it()
    decision = decide(extra="--max_epoch 4")
    assert decision.run and decision.reason == "extra changed ('' -> '--max_epoch 4') since the finished run"


def test_a_missing_input_or_output(step):
    root, out, decide, run_it = step
    run_it()
    (out / "result").unlink()
    assert decide().reason == f"same inputs, but {out / 'result'} is missing"
    run_it()
    (root / "upstream.txt").unlink()
    assert decide().reason == f"upstream {root / 'upstream.txt'} is missing since the finished run"


def test_an_unfinished_run_resumes_and_a_changed_one_is_cleared_keeping_logs(step):
    root, out, decide, _ = step
    assert decide(clear=True).run  # started ...
    (out / "checkpoint.pth").write_text("half")  # ... and crashed
    (out / "train.log").write_text("the crash\n")
    (out / "log").mkdir()
    (out / "tensorboard").mkdir()
    decision = decide(clear=True)
    assert decision.reason == "resuming an unfinished run with the same inputs"
    assert (out / "checkpoint.pth").exists()
    (root / "conf.yaml").write_text("lr: 0.3\n")
    decision = decide(clear=True)
    assert (
        decision.run and "config" in decision.reason and "removed its outputs (2 entries; logs kept)" in decision.reason
    )
    assert sorted(p.name for p in out.iterdir()) == [STAMP, "log", "train.log"]


def test_check_decides_without_writing(step):
    _, out, decide, _ = step
    assert decide(record=False).run
    assert not out.exists()


def test_a_directory_input_stands_for_all_its_files(tmp_path):
    model = tmp_path / "hf"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\0" * 10)
    out = tmp_path / "out"
    assert begin(out, {}, {"teacher": model}).run
    finish(out)
    assert not begin(out, {}, {"teacher": model}).run
    (model / "model.safetensors").write_bytes(b"\1" * 10)
    assert begin(out, {}, {"teacher": model}).reason.startswith(f"teacher {model} changed")


def test_the_command_line_tool(tmp_path):
    (tmp_path / "c.yaml").write_text("a: 1\n")
    tool = [sys.executable, "-m", "espnet_distill.recipe.stage_stamp"]

    def call(*args):
        return subprocess.run([*tool, *args], cwd=tmp_path, capture_output=True, text=True)

    args = ["out", "--input", "config=c.yaml", "--arg", "extra="]
    assert call("run_id", "out").stdout.strip() == "none"
    assert call("begin", *args).stdout.strip() == "run: no record of an earlier run"
    assert call("finish", "out").returncode == 0
    run_id = call("run_id", "out").stdout.strip()
    assert len(run_id) == 32 and json.loads((tmp_path / "out" / STAMP).read_text())["finished"]["run_id"] == run_id
    assert call("begin", *args).stdout.startswith("skip: up to date")
    changed = call("begin", "out", "--input", "config=c.yaml", "--arg", "extra=--seed 3").stdout.strip()
    assert changed == "run: extra changed ('' -> '--seed 3') since the finished run"
    bad = call("begin", "out", "--arg", "noequals")
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr
    assert call("finish", "elsewhere").returncode == 1
