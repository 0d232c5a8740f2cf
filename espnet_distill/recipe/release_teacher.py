"""Release a pretrained teacher: its weights in float16, their sha256, and how it was made.

Writes ``<out>`` (the ``torchaudio`` teacher format, float16 tensors: half the
size, loaded back into float32 modules), ``<out>.sha256`` (``sha256sum``'s
format) and ``<out without .pt>.json`` (the command, the machine, the
pretraining results of each iteration).  The released file is loaded back as
a teacher before anything is written.

Example (stage 6 of egs/mini_synth/ssl1):
    python -m espnet_distill.recipe.release_teacher --checkpoint exp/pretrain_iter2/teacher.pt \\
        --out ../asr1/pretrained/hubert_mini.pt --results exp/pretrain_iter1/results.json exp/pretrain_iter2/results.json
"""

import argparse
import hashlib
import io
import json
import logging
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from espnet_distill.teacher import load_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, require_entry
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def half(value: Any) -> Any:
    """Floating-point tensors in float16; everything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float16)
    if isinstance(value, dict):
        return {k: half(v) for k, v in value.items()}
    return value


def cpu_name() -> str:
    """The machine's CPU model (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def get_parser() -> argparse.ArgumentParser:
    """The command line of ``release_teacher``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="a torchaudio-format teacher (hubert_pretrain's teacher.pt)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--results", type=Path, nargs="*", default=[], help="results.json of each pretraining iteration"
    )
    parser.add_argument("--command", default="", help="the command that made it, recorded in the json")
    return parser


def released_bytes(checkpoint_path: Path, out: Path) -> Tuple[bytes, HubertTeacher]:
    """The float16 release of ``checkpoint_path``, and the teacher it loads back as (checked beside ``out``)."""
    checkpoint = load_checkpoint(checkpoint_path)
    released = {
        "config": require_entry(checkpoint, "config", checkpoint_path),
        "model": half(require_entry(checkpoint, "model", checkpoint_path)),
    }
    buffer = io.BytesIO()
    torch.save(released, buffer)
    data = buffer.getvalue()
    tmp = out.with_name(f".{out.name}.check")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    try:
        teacher = load_teacher("torchaudio", path=str(tmp))  # it loads, through the safe loader
    finally:
        tmp.unlink()
    return data, teacher


def release_info(
    out: Path, data: bytes, digest: str, teacher: HubertTeacher, results: List[Path], command: str
) -> Dict[str, Any]:
    """The release's json: the file, the teacher's size, each pretraining iteration's results, the machine."""
    iterations = [json.loads(path.read_text(encoding="utf-8")) for path in results]
    return {
        "file": out.name,
        "sha256": digest,
        "bytes": len(data),
        "params": sum(p.numel() for p in teacher.model.parameters()),
        "layers": teacher.num_layers,
        "width": teacher.hidden_size,
        "codewords": None if teacher.label_embeddings is None else int(teacher.label_embeddings.shape[0]),
        "iterations": [
            {
                k: r.get(k)
                for k in (
                    "step",
                    "valid_accuracy",
                    "valid_loss",
                    "wall_seconds_last_call",
                    "train_audio_seconds_per_second",
                )
            }
            for r in iterations
        ],
        "made_by": command,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        data, teacher = released_bytes(args.checkpoint, args.out)
    except CheckpointError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    digest = hashlib.sha256(data).hexdigest()
    info = release_info(args.out, data, digest, teacher, args.results, args.command)
    with atomic_write(args.out, mode="wb") as f:
        f.write(data)
    with atomic_write(args.out.with_name(args.out.name + ".sha256")) as f:
        f.write(f"{digest}  {args.out.name}\n")
    with atomic_write(args.out.with_suffix(".json")) as f:
        json.dump(info, f, indent=2)
    logger.info("released %s (%.1f MB, %d parameters, sha256 %s)", args.out, len(data) / 1e6, info["params"], digest)


if __name__ == "__main__":
    run(main)
