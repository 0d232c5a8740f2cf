"""Training progress a person can see: each training job writes ``progress.json`` in its exp dir, and
:func:`watch` shows the progress of a stage's jobs on the console.

A job (ESPnet's trainer through :class:`~espnet_distill.tasks.trainer.SafeTrainer`, or the HuBERT
pretraining loop) calls :meth:`ProgressFile.update` at every step; the file is rewritten at most every
few seconds.  :func:`watch` reads the files of the jobs a stage queued and reports, for each, the
step out of the total, the latest loss and an ETA from this run's own pace, and the stage's ETA when
jobs run side by side: a tqdm bar per job when the console is a terminal, else a line every
``interval`` seconds.
"""

import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO

from espnet_distill.utils.fileio import atomic_write

PROGRESS_FILE = "progress.json"
# The loss ESPnet's trainer logs every log_interval steps ("...batch: ..., loss=12.3, ...").
_LOSS = re.compile(r"[ ,]loss=([-+0-9.eE]+|nan|inf)")


@dataclass
class Progress:
    step: int = 0  # steps done, over the whole training (resumed runs included)
    total: int = 0  # steps of the whole training (0: not known yet)
    run_start_step: int = 0  # the step this process started at (a resumed run starts late)
    run_started: float = 0.0  # time.time() when this process started
    updated: float = 0.0
    loss: Optional[float] = None
    done: bool = False

    def eta_seconds(self) -> Optional[float]:
        """From this process's own pace; None until it has one."""
        steps = self.step - self.run_start_step
        if self.done:
            return 0.0
        if steps <= 0 or self.total <= 0 or self.updated <= self.run_started:
            return None
        return max(0.0, (self.total - self.step) * (self.updated - self.run_started) / steps)


class ProgressFile:
    """Writes ``<out_dir>/progress.json``, at most every ``min_interval`` seconds (and always when done)."""

    def __init__(self, out_dir: Path, min_interval: float = 5.0) -> None:
        self.path = Path(out_dir) / PROGRESS_FILE
        self.min_interval = min_interval
        self.progress: Optional[Progress] = None
        self._written = 0.0

    def update(self, step: int, total: int, loss: Optional[float] = None, done: bool = False) -> None:
        now = time.time()
        if self.progress is None:
            self.progress = Progress(run_start_step=step, run_started=now)
        p = self.progress
        p.step, p.total, p.updated, p.done = step, total, now, done
        if loss is not None and math.isfinite(loss):
            p.loss = float(loss)
        if done or now - self._written >= self.min_interval:
            with atomic_write(self.path) as f:
                json.dump(asdict(p), f)
            self._written = now


def read_progress(exp_dir: Path) -> Optional[Progress]:
    """The job's ``progress.json``, or None (not started, or unreadable mid-write on another filesystem)."""
    try:
        data = json.loads((Path(exp_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
        return Progress(**{k: data[k] for k in Progress.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def latest_logged_loss(log: Path) -> Optional[float]:
    """The last ``loss=`` of a training log (its last 16 kB)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = _LOSS.findall(text)
    return float(found[-1]) if found else None


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class JobState:
    name: str
    progress: Optional[Progress]
    loss: Optional[float]
    started: bool  # wrote progress during this watch

    @property
    def done(self) -> bool:
        return self.started and self.progress is not None and self.progress.done


def job_states(dirs: Sequence[Path], since: float) -> List[JobState]:
    states = []
    for d in dirs:
        p = read_progress(d)
        started = p is not None and p.updated >= since
        loss = None
        if started:
            loss = p.loss if p.loss is not None else latest_logged_loss(Path(d) / "train.log")
        states.append(JobState(Path(d).name, p if started else None, loss, started))
    return states


def stage_eta(states: Sequence[JobState], parallel: int) -> Optional[float]:
    """Seconds until every job is done: the running jobs' ETAs, and each queued job taking as long as the
    started ones' mean projected duration, spread over ``parallel`` slots."""
    running = [s.progress.eta_seconds() for s in states if s.started and not s.done]
    if any(r is None for r in running):
        return None
    projected = [
        (s.progress.updated - s.progress.run_started) + (s.progress.eta_seconds() or 0.0)
        for s in states
        if s.started and s.progress.step > s.progress.run_start_step
    ]
    queued = sum(1 for s in states if not s.started)
    if queued and not projected:
        return None
    mean = sum(projected) / len(projected) if projected else 0.0
    slots = sorted(running) + [0.0] * max(0, parallel - len(running))
    for _ in range(queued):  # each queued job goes to the slot that frees first
        slots.sort()
        slots[0] += mean
    return max(slots) if slots else 0.0


def render_line(label: str, states: Sequence[JobState], parallel: int) -> str:
    parts = []
    for s in states:
        if not s.started:
            parts.append(f"{s.name} queued")
        elif s.done:
            parts.append(f"{s.name} done")
        else:
            p = s.progress
            share = f" ({100 * p.step / p.total:.0f}%)" if p.total else ""
            loss = f", loss {s.loss:.3g}" if s.loss is not None else ""
            parts.append(f"{s.name} {p.step}/{p.total or '?'}{share}{loss}, ETA {duration(p.eta_seconds())}")
    done = sum(s.done for s in states)
    head = f"{label}: {done}/{len(states)} done"
    if len(states) > 1 and done < len(states):
        head += f", stage ETA {duration(stage_eta(states, parallel))}"
    return head + " | " + "; ".join(parts)


def watch(
    label: str,
    dirs: Sequence[Path],
    parallel: int = 1,
    interval: float = 60.0,
    stream: TextIO = sys.stdout,
    tty: Optional[bool] = None,
    poll: float = 2.0,
    stop_when_done: bool = True,
    parent: Optional[int] = None,
) -> List[JobState]:
    """Report the jobs of ``dirs`` until all are done, the process ``parent`` is gone, or this is killed: a
    tqdm bar per job on a terminal, else a line every ``interval`` seconds.  Returns the last states."""
    since = time.time() - 1.0
    tty = stream.isatty() if tty is None else tty
    bars: Dict[str, object] = {}
    last_line = time.time()
    while True:
        states = job_states(dirs, since)
        if tty:
            _update_bars(bars, states, stream)
        elif time.time() - last_line >= interval:
            print(
                f"{time.strftime('%Y-%m-%dT%H:%M:%S')} (progress) {render_line(label, states, parallel)}", file=stream
            )
            stream.flush()
            last_line = time.time()
        if (stop_when_done and states and all(s.done for s in states)) or (parent and not _alive(parent)):
            for bar in bars.values():
                bar.close()
            return states
        time.sleep(poll)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _update_bars(bars: Dict[str, object], states: Sequence[JobState], stream: TextIO) -> None:
    from tqdm import tqdm

    for i, s in enumerate(states):
        if not s.started:
            continue
        bar = bars.get(s.name)
        if bar is None:
            bar = bars[s.name] = tqdm(total=s.progress.total or None, desc=s.name, position=i, file=stream, leave=True)
        if s.progress.total and bar.total != s.progress.total:
            bar.total = s.progress.total
        bar.n = s.progress.step
        if s.loss is not None:
            bar.set_postfix_str(f"loss {s.loss:.3g}", refresh=False)
        bar.refresh()
