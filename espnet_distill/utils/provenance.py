"""What produced a stage's output, so that a rerun redoes exactly the work whose inputs changed.

Each skippable stage keeps ``<out_dir>/.stage_inputs.json``: the arguments
it ran with, a SHA-256 of every input file (configs, upstream outputs) keyed
by its role, whether the run finished, and a run id given when it finished.
A rerun compares what it would run with against that record:

- same inputs, finished, outputs present: **skip**;
- same inputs, not finished (a crash): **run**, resuming what is there;
- anything changed, or no record: **run**; a changed record also clears the
  stale outputs (``clear``), keeping the logs, so that nothing resumes from
  a run with other inputs.

Contents, not times, decide: touching a file changes nothing.  A file whose
size and modification time match the record is not read again.
"""

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from espnet_distill.utils.fileio import atomic_write, sha256_file

PathLike = Union[str, Path]
STAMP = ".stage_inputs.json"


def describe_input(path: PathLike, recorded: Optional[Mapping] = None) -> Dict:
    """``{"path", "sha256", "size", "mtime_ns"}`` of a file, or of a directory's files (``"files"``).

    A file whose size and modification time equal ``recorded``'s keeps its recorded digest.
    A missing path is ``{"path", "missing": True}``.
    """
    path = Path(path)
    if path.is_file():
        stat = path.stat()
        if (
            recorded
            and recorded.get("size") == stat.st_size
            and recorded.get("mtime_ns") == stat.st_mtime_ns
            and "sha256" in recorded
        ):
            digest = recorded["sha256"]
        else:
            digest = sha256_file(path)
        return {"path": str(path), "sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if path.is_dir():
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode("utf-8"))
        return {"path": str(path), "sha256": digest.hexdigest(), "files": len(files)}
    return {"path": str(path), "missing": True}


def _same_content(a: Optional[Mapping], b: Optional[Mapping]) -> bool:
    if a is None or b is None:
        return a is b
    return a.get("missing", False) == b.get("missing", False) and a.get("sha256") == b.get("sha256")


@dataclass
class Decision:
    run: bool
    reason: str

    def __str__(self) -> str:
        return f"{'run' if self.run else 'skip'}: {self.reason}"


def read_stamp(out_dir: PathLike) -> Optional[Dict]:
    """The record of ``out_dir``, or None (none yet, or unreadable)."""
    path = Path(out_dir) / STAMP
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_stamp(out_dir: Path, record: Dict) -> None:
    with atomic_write(out_dir / STAMP) as f:
        json.dump(record, f, indent=1, sort_keys=True)


def _changes(old: Dict, args: Mapping[str, str], inputs: Mapping[str, Dict]) -> List[str]:
    changes = []
    old_args, old_inputs = old.get("args", {}), old.get("inputs", {})
    for name in sorted(set(old_args) | set(args)):
        if old_args.get(name) != args.get(name):
            changes.append(f"{name} changed ({old_args.get(name)!r} -> {args.get(name)!r})")
    for role in sorted(set(old_inputs) | set(inputs)):
        before, now = old_inputs.get(role), inputs.get(role)
        if not _same_content(before, now):
            where = (now or before)["path"]
            changes.append(f"{role} {where} {'is missing' if now and now.get('missing') else 'changed'}")
    return changes


def clear_outputs(out_dir: Path, keep: Sequence[str] = ("log",)) -> List[str]:
    """Remove what a stale run left in ``out_dir``, except logs (``*.log``, ``*.log.N``, ``keep``) and the record."""
    removed = []
    for entry in sorted(out_dir.iterdir()):
        name = entry.name
        if name == STAMP or name in keep or name.endswith(".log") or ".log." in name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(name)
    return removed


def begin(
    out_dir: PathLike,
    args: Mapping[str, str],
    inputs: Mapping[str, PathLike],
    outputs: Sequence[PathLike] = (),
    clear: bool = False,
    record: bool = True,
) -> Decision:
    """Decide whether the stage writing ``out_dir`` runs; when it does, record the inputs it runs with.

    Args:
        args: the stage's arguments that change its result (name -> value).
        inputs: the files it reads (role -> path); a directory stands for all its files.
        outputs: files that must exist for a finished run to count as done.
        clear: when the inputs changed, remove the stale outputs (training dirs that would resume).
        record: False: only decide (nothing is written or removed).
    """
    out_dir = Path(out_dir)
    old = read_stamp(out_dir)
    old_inputs = (old or {}).get("inputs", {})
    described = {role: describe_input(path, old_inputs.get(role)) for role, path in inputs.items()}
    args = {name: str(value) for name, value in args.items()}
    if old is None:
        decision = Decision(True, "no record of an earlier run")
    else:
        changes = _changes(old, args, described)
        missing = [str(p) for p in outputs if not Path(p).exists()]
        if changes:
            what = "the finished run" if old.get("finished") else "the unfinished run"
            decision = Decision(True, f"{'; '.join(changes)} since {what}")
            if clear and record and out_dir.is_dir():
                removed = clear_outputs(out_dir)
                if removed:
                    decision.reason += f"; removed its outputs ({len(removed)} entries; logs kept)"
        elif not old.get("finished"):
            decision = Decision(True, "resuming an unfinished run with the same inputs")
        elif missing:
            decision = Decision(True, f"same inputs, but {missing[0]} is missing")
        else:
            if record and any(described[r].get("mtime_ns") != old_inputs[r].get("mtime_ns") for r in described):
                _write_stamp(out_dir, {**old, "inputs": described})  # touched, not changed: remember the new times
            return Decision(False, "up to date (same arguments and inputs as the finished run)")
    if record:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_stamp(out_dir, {"args": args, "inputs": described, "finished": None})
    return decision


def finish(out_dir: PathLike) -> str:
    """Mark the run recorded in ``out_dir`` as finished; returns its new run id."""
    out_dir = Path(out_dir)
    record = read_stamp(out_dir)
    if record is None:
        raise FileNotFoundError(f"{out_dir / STAMP}: no record to finish (call begin first)")
    run_id = uuid.uuid4().hex
    record["finished"] = {
        "run_id": run_id,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pid": os.getpid(),
    }
    _write_stamp(out_dir, record)
    return run_id
