"""Pretrain a small HuBERT teacher by masked prediction of k-means labels.

Resumes from ``<out_dir>/checkpoint.pt``; writes ``<out_dir>/teacher.pt``
(load it with ``teacher: torchaudio``) and ``results.json``.

Example:
    python -m espnet_distill.bin.hubert_pretrain --config conf/hubert_pretrain.yaml \\
        --train_data data/train --valid_data data/dev --label_dir exp/hubert_kmeans \\
        --out_dir exp/hubert_teacher
"""

import argparse
import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.make_teacher.pretrain import LabelledAudio, PretrainConfig, pretrain, set_threads
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import parse_with_config, str2bool
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_data", type=Path)
    parser.add_argument("--valid_data", type=Path)
    parser.add_argument("--label_dir", type=Path, help="output dir of hubert_kmeans")
    parser.add_argument("--out_dir", type=Path)
    parser.add_argument("--num_threads", type=int, default=0, help="torch threads (0: torch's default)")
    defaults = PretrainConfig()
    for field in fields(PretrainConfig):
        value = getattr(defaults, field.name)
        parser.add_argument(f"--{field.name}", type=str2bool if isinstance(value, bool) else type(value), default=value)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_with_config(get_parser(), argv)
    for name in ("train_data", "valid_data", "label_dir", "out_dir"):
        if getattr(args, name) is None:
            raise SystemExit(f"hubert_pretrain: --{name} is required")
    setup_logging(args.out_dir / "train.log")
    set_threads(args.num_threads)
    config = PretrainConfig(**{f.name: getattr(args, f.name) for f in fields(PretrainConfig)})
    with atomic_write(args.out_dir / "config.yaml") as f:
        yaml.safe_dump({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, f)
    try:
        num_classes = json.loads((args.label_dir / "summary.json").read_text())["num_clusters"]
        train = LabelledAudio(args.train_data, args.label_dir / args.train_data.name / "labels")
        valid = LabelledAudio(args.valid_data, args.label_dir / args.valid_data.name / "labels")
        results = pretrain(train, valid, num_classes, config, args.out_dir)
    except (AudioError, DataDirError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("finished: %s", {k: v for k, v in results.items() if k != "config"})


if __name__ == "__main__":
    run(main)
