"""Run the teacher once over data sets and store what the students' distillation needs.

What is stored is the union of what the given distillation configs need: the
teacher layers their regression heads target, the projected CNN features when a
config distills a front-end in two stages (``frontend_steps``), and the
codeword logits when one has the KL loss (the top ``--topk`` of each frame with
their codeword ids, or all of them).  Then ``teacher_targets: <output_dir>`` (or
``--teacher_targets``) in ``distill_train`` reads them instead of running the
teacher.  Layout, resume and checks: :mod:`espnet_distill.distill.targets`.

Example:
    python -m espnet_distill.bin.dump_teacher_targets --teacher_yaml exp/teacher/teacher.yaml \\
        --distill_config conf/distill/deep_thin_reg_kl.yaml --distill_config conf/distill/shallow_wide_reg.yaml \\
        --data_dir data/train --data_dir data/dev --output_dir dump/teacher_targets --dtype float16 --topk 8
"""

import argparse
import json
import logging
from pathlib import Path
from typing import List, Optional

import torch
import yaml

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.distill import targets
from espnet_distill.tasks.distill import build_student_models
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import ConfigError, parse_with_config
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--distill_config",
        action="append",
        required=True,
        help="a student's distillation YAML, optionally :<front-end> (wav_cnn, fbank) to override its own (repeat)",
    )
    parser.add_argument("--teacher_yaml", type=Path, help="teacher and teacher_conf (the teacher stage writes it)")
    parser.add_argument("--teacher", type=str, help="the teacher's format, without --teacher_yaml")
    parser.add_argument("--teacher_conf", type=str, help="its loader's arguments as YAML, e.g. '{path: t.pt}'")
    parser.add_argument("--fbank_stats", type=Path, help="CMVN statistics, for configs with an fbank front-end")
    parser.add_argument("--data_dir", type=Path, action="append", required=True, help="a data dir (repeat)")
    parser.add_argument("--output_dir", type=Path, required=True, help="the dump root: <output_dir>/<data dir name>")
    parser.add_argument("--dtype", choices=targets.DTYPES, default="float16", help="storage precision")
    parser.add_argument(
        "--topk", type=int, default=0, help="codeword logits kept per frame, with their ids (0: all, in order)"
    )
    parser.add_argument("--shard_utts", type=int, default=256, help="utterances per shard")
    parser.add_argument("--batch_seconds", type=float, default=16.0, help="padded audio per teacher batch")
    parser.add_argument("--device", default="cpu", help="where the teacher runs (cpu, cuda)")
    return parser


def dump_all(args: argparse.Namespace) -> None:
    """Build the students, work out what they need, and dump it for every data dir."""
    models = build_student_models(
        args.distill_config, args.teacher_yaml, args.teacher, args.teacher_conf, args.fbank_stats
    )
    spec = targets.spec_of_models([m for m, _ in models], dtype=args.dtype, topk=args.topk)
    model, task_args = next(((m, a) for m, a in models if m.codeword_head is not None), models[0])
    del models
    logger.info("storing %s", json.dumps({**vars(spec), "names": spec.names()}))
    for data_dir in args.data_dir:
        out = args.output_dir / data_dir.name
        result = targets.dump_targets(
            model,
            task_args.teacher,
            task_args.teacher_conf,
            spec,
            data_dir / "wav.scp",
            out,
            shard_utts=args.shard_utts,
            batch_seconds=args.batch_seconds,
            device=args.device,
        )
        manifest = result.manifest
        logger.info(
            "%s: %.2f h of audio, %d shards (%d kept from an earlier run) in %.1f s; %s",
            out,
            manifest["audio_hours"],
            manifest["shards"],
            result.shards_skipped,
            result.seconds,
            ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in manifest["bytes"].items()),
        )


def main(argv: Optional[List[str]] = None) -> None:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    setup_logging()
    if (args.teacher_yaml is None) == (args.teacher is None):
        parser.error("give --teacher_yaml, or --teacher (and --teacher_conf)")
    if args.shard_utts < 1 or args.batch_seconds <= 0:
        parser.error("--shard_utts and --batch_seconds must be positive")
    try:
        dump_all(args)
    except (CheckpointError, AudioError, DataDirError, ConfigError, targets.TargetsError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from None
    except (yaml.YAMLError, torch.cuda.OutOfMemoryError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from None


if __name__ == "__main__":
    run(main)
