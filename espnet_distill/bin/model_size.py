"""Build the models of distillation configs without training, and print their sizes.

For each ``conf/distill/*.yaml``, the student is built against the teacher
(``--teacher``/``--teacher_conf``; default ``untrained``: HuBERT Base's
structure with random weights, so no checkpoint is needed) exactly as stage 5
builds it, and its parameters are counted: the front-end and encoder (what
fine-tuning keeps, ``student.yaml``'s ``params``), the distillation heads
(prediction heads, the codeword projection, stage A's front-end head; dropped
after distillation), and with ``--vocab_size V`` the CTC layer that
fine-tuning adds.  ``--out`` writes the table as JSON.

A pruning config (``model_conf.prune_conf``) is built as it starts, a copy of the teacher; its student is
reported at its target size (what the gates are driven to; the export keeps that size within the
rounding of each layer's counts), its start as ``unpruned_params``.  A config that starts from another
student (``init_student: exp/distill_<D>``) is reported at the size of ``<D>.yaml`` beside it, pruned,
unless that exp dir exists, whose student is then built.

Example:
    python -m espnet_distill.bin.model_size --vocab_size 31 conf/distill/*.yaml
"""

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import yaml
from espnet2.utils.nested_dict_action import NestedDictAction

from espnet_distill.tasks.distill import DistillTask
from espnet_distill.utils.cli import UserError, run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging


def count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def start_config(config: Path) -> Optional[Path]:
    """The config of the student ``config`` starts from (``init_student: exp/distill_<D>``) when that student
    is not distilled yet: ``<D>.yaml`` beside it; else None."""
    init = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("init_student")
    if not init or Path(init).is_dir():
        return None
    name = Path(init).name
    start = config.parent / f"{name[len('distill_') :]}.yaml"
    if not name.startswith("distill_") or not start.is_file():
        raise UserError(
            f"{config}: init_student {init} is not a student dir, nor exp/distill_<D> of a config beside it"
        )
    return start


def distill_model_size(
    config: Path, teacher: str = "untrained", teacher_conf: Optional[Dict[str, Any]] = None, vocab_size: int = 0
) -> Dict[str, Any]:
    """The resolved student structure and parameter counts of one distillation config."""
    start = start_config(config)
    if start is not None:
        row = distill_model_size(start, teacher, teacher_conf, vocab_size)
        if "prune_target_params" not in row:
            raise UserError(f"{config} starts from {start}, which does not prune: distill it first")
        return {**row, "config": str(config), "starts_from": str(start), "distillation_head_params": None}
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "feats_stats.npz"  # the fbank front-end's CMVN: any values do for a size
        np.savez(stats, count=1, sum=np.zeros(80), sum_square=np.ones(80))
        cmd = ["--config", str(config), "--teacher", teacher, "--output_dir", tmp, "--fbank_stats", str(stats)]
        for key, value in (teacher_conf or {}).items():
            cmd += ["--teacher_conf", f"{key}={value}"]
        args = DistillTask.get_parser().parse_args(cmd)
        model = DistillTask.build_model(args)
    student = count(model.frontend) + count(model.encoder)
    heads = sum(count(getattr(model, name, None)) for name in ("heads", "codeword_head", "frontend_head"))
    width = model.encoder.output_size()
    pruning = {}
    if model.pruning is not None:
        target = model.pruning.lagrangian.target_params
        pruning = {"unpruned_params": student, "prune_target_params": target}
        student = target
    return {
        **pruning,
        "config": str(config),
        "frontend": args.frontend,
        "layers": args.encoder_conf.get("num_layers"),
        "width": width,
        "ffn": args.encoder_conf.get("ffn_dim"),
        "frontend_params": count(model.frontend),
        "student_params": student,
        "distillation_head_params": heads,
        "ctc_params": (width + 1) * vocab_size,
        "finetuned_params": student + (width + 1) * vocab_size,
        "teacher_params": count(model.teacher.model),
        # student.yaml's structure keys: what fine-tuning builds (build_student)
        "description": {
            "frontend": args.frontend,
            "frontend_conf": {k: v for k, v in args.frontend_conf.items() if k != "stats_file"},
            "encoder": args.encoder,
            "encoder_conf": dict(args.encoder_conf),
        },
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", type=Path, help="distillation configs")
    parser.add_argument("--teacher", default="untrained")
    parser.add_argument("--teacher_conf", action=NestedDictAction, default=dict())
    parser.add_argument("--vocab_size", type=int, default=0, help="tokens of the CTC layer that fine-tuning adds")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON")
    args = parser.parse_args(argv)
    setup_logging(level="WARNING")
    rows = [distill_model_size(c, args.teacher, args.teacher_conf, args.vocab_size) for c in args.configs]
    print(
        "| config | front-end | layers x width, FFN | student params (front-end) | distillation heads | fine-tuned (+ CTC) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        structure = f"{r['layers']} x {r['width']}, {r['ffn']}"
        if "prune_target_params" in r:
            structure += f", pruned from {r['unpruned_params'] / 1e6:.2f} M"
            if r.get("starts_from"):
                structure += f" ({Path(r['starts_from']).stem})"
        heads = r["distillation_head_params"]
        print(
            f"| {Path(r['config']).stem} | {r['frontend']} | {structure} | "
            f"{r['student_params'] / 1e6:.2f} M ({r['frontend_params'] / 1e6:.2f} M) | "
            f"{'-' if heads is None else f'{heads / 1e6:.2f} M'} | {r['finetuned_params'] / 1e6:.2f} M |"
        )
    print(f"teacher ({args.teacher}): {rows[0]['teacher_params'] / 1e6:.2f} M")
    if args.out is not None:
        with atomic_write(args.out) as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    run(main)
