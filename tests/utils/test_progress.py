"""Training progress: progress.json written by a job, read and shown by the watcher (lines, ETAs)."""

import io
import json
import subprocess
import sys
import threading
import time

import pytest

from espnet_distill.utils.progress import (
    JobState,
    Progress,
    ProgressFile,
    duration,
    latest_logged_loss,
    read_progress,
    render_line,
    stage_eta,
    watch,
)


def test_the_file_is_throttled_but_always_written_when_done(tmp_path):
    progress = ProgressFile(tmp_path, min_interval=3600)
    progress.update(5, 100, loss=2.5)
    assert read_progress(tmp_path).step == 5  # the first call writes
    progress.update(6, 100, loss=float("nan"))
    assert read_progress(tmp_path).step == 5  # throttled
    progress.update(100, 100, done=True)
    written = json.loads((tmp_path / "progress.json").read_text())
    assert written["step"] == 100 and written["done"] and written["loss"] == 2.5  # NaN does not replace a loss
    assert written["run_start_step"] == 5


def test_eta_from_this_runs_own_pace():
    # Resumed at step 40, 30 steps in 60 s: 2 s a step, 30 steps left.
    p = Progress(step=70, total=100, run_start_step=40, run_started=1000.0, updated=1060.0)
    assert p.eta_seconds() == pytest.approx(60.0)
    assert Progress(step=40, total=100, run_start_step=40, run_started=1000.0, updated=1001.0).eta_seconds() is None
    assert Progress(step=3, total=0, run_start_step=0, run_started=0.0, updated=5.0).eta_seconds() is None
    assert Progress(step=100, total=100, done=True).eta_seconds() == 0.0


def job(name, step, total, start=0.0, now=100.0, started=True, loss=None, done=False):
    p = Progress(step=step, total=total, run_start_step=0, run_started=start, updated=now, done=done)
    return JobState(name, p if started else None, loss, started)


def test_the_stage_eta_puts_queued_jobs_on_the_slot_that_frees_first():
    # Two running jobs: 100 s for 10 of 20 steps (ETA 100 s, 200 s in all) and 100 s for 50 of 100
    # (ETA 100 s); one queued job, as long as their mean (200 s), on 2 slots: 100 + 200.
    states = [job("a", 10, 20), job("b", 50, 100), job("c", 0, 0, started=False)]
    assert stage_eta(states, parallel=2) == pytest.approx(300.0)
    assert stage_eta(states, parallel=3) == pytest.approx(200.0)  # a free slot: the queued job starts now
    assert stage_eta([job("a", 10, 20)], parallel=1) == pytest.approx(100.0)
    assert stage_eta([job("a", 0, 20), job("c", 0, 0, started=False)], parallel=1) is None  # no pace yet


def test_a_line_has_each_jobs_step_loss_and_eta_and_the_stages_eta():
    states = [
        job("asr_teacher_train", 10, 20, loss=45.25),
        job("asr_b", 20, 20, done=True),
        job("asr_c", 0, 0, started=False),
    ]
    line = render_line("Stage 7", states, parallel=2)
    assert line.startswith("Stage 7: 1/3 done, stage ETA ")
    assert "asr_teacher_train 10/20 (50%), loss 45.2, ETA 1m40s" in line
    assert "asr_b done" in line and "asr_c queued" in line
    assert duration(3725) == "1h02m" and duration(59.6) == "1m00s" and duration(None) == "?"


def test_the_loss_comes_from_espnets_log_when_the_job_does_not_report_one(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "[vm] 2026-11-30 01:36:06,608 (trainer:811) INFO: 1epoch:train:1-100batch: iter_time=0.003, "
        "loss_ctc=200.147, loss=200.147, backward_time=0.281\n"
        "[vm] 2026-11-30 01:37:14,951 (trainer:811) INFO: 1epoch:train:101-200batch: iter_time=0.005, "
        "loss_ctc=109.237, loss=109.237, grad_norm=140.547\n"
    )
    assert latest_logged_loss(log) == pytest.approx(109.237)
    assert latest_logged_loss(tmp_path / "missing.log") is None


def test_the_watcher_reports_on_a_log_and_returns_when_every_job_is_done(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    stream = io.StringIO()

    def train(d, steps):
        progress = ProgressFile(d, min_interval=0)
        for step in range(1, steps + 1):
            time.sleep(0.02)
            progress.update(step, steps, loss=1.0 / step)
        progress.update(steps, steps, done=True)

    threads = [threading.Thread(target=train, args=(d, n)) for d, n in zip(dirs, (10, 30))]
    for t in threads:
        t.start()
    states = watch("Stage 5", dirs, parallel=2, interval=0.0, stream=stream, tty=False, poll=0.05)
    for t in threads:
        t.join()
    assert [s.done for s in states] == [True, True]
    lines = stream.getvalue().splitlines()
    assert lines and all("(progress) Stage 5: " in line for line in lines)
    assert any("/30 (" in line and "ETA" in line for line in lines)


def test_the_cli_stops_when_its_parent_is_gone(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    cmd = [sys.executable, "-m", "espnet_distill.recipe.watch_progress", "--parent", str(parent.pid), str(tmp_path)]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    parent.wait()
    assert watcher.wait(timeout=30) == 0
    assert watcher.stdout.read() == ""  # never started, never done: no summary


def test_on_a_terminal_each_job_gets_a_bar(tmp_path):
    progress = ProgressFile(tmp_path / "a", min_interval=0)
    (tmp_path / "a").mkdir()
    progress.update(7, 10, loss=0.5)
    progress.update(10, 10, done=True)
    stream = io.StringIO()
    states = watch("Stage 7", [tmp_path / "a"], tty=True, stream=stream, poll=0.01)
    assert states[0].done
    assert "a: 100%" in stream.getvalue() and "10/10" in stream.getvalue() and "loss 0.5" in stream.getvalue()
