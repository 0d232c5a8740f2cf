"""Size and CPU speed of a teacher and its students: parameters, MACs and real-time factor.

Each ``--model NAME=PATH`` is either an exported model directory
(``student.yaml`` and ``student.pth``: a distilled student, or the teacher from
``export_teacher``) or a YAML file with a ``student.yaml``-style description
(``frontend``, ``frontend_conf``, ``encoder``, ``encoder_conf``), built with
random weights, which is enough for timing (e.g. the paper-scale structures of
``conf/benchmark/``).  The model timed is the front-end and the encoder, what
inference runs before the CTC layer.

For every model:
- parameters in all and of the front-end (the CTC layer excluded);
- multiply-accumulates per second of audio (``torch.utils.flop_counter`` over a
  forward pass of ``--macs_seconds`` of audio; FFTs are not counted);
- the CPU real-time factor at batch 1 over the utterances of ``--data_dir``
  (``--num_threads`` threads, ``--warmup`` utterances untimed, the median of
  ``--repeats`` passes over the set);
- speed-ups: against the model named ``--reference`` (default: the first), and
  for a model whose front-end is not ``wav_cnn``, against the ``wav_cnn`` model
  with the same encoder.

Writes ``<out_dir>/benchmark.json`` and ``benchmark.md``.

Example:
    python -m espnet_distill.bin.benchmark --data_dir data/test --out_dir exp/benchmark \\
        --model teacher=exp/teacher_student --model deep_thin=exp/distill_deep_thin_reg_kl \\
        --model paper_deep_thin_fbank=conf/benchmark/paper_deep_thin_fbank.yaml
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.benchmark.inputs import model_arg
from espnet_distill.benchmark.models import benchmark, write_report
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=model_arg, action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--data_dir", type=Path, required=True, help="a data dir whose wav.scp is timed")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--reference", default=None, help="the model speed-ups are against (default: the first)")
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="utterances run before timing")
    parser.add_argument("--max_utts", type=int, default=None, help="time only the first N utterances")
    parser.add_argument("--macs_seconds", type=float, default=10.0, help="audio length of the MAC count")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    names = [name for name, _ in args.model]
    if len(set(names)) != len(names):
        raise SystemExit(f"error: model names must be unique: {' '.join(names)}")
    try:
        report = benchmark(
            args.model,
            args.data_dir,
            reference=args.reference,
            num_threads=args.num_threads,
            repeats=args.repeats,
            warmup=args.warmup,
            max_utts=args.max_utts,
            macs_seconds=args.macs_seconds,
        )
    except (FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    print(write_report(report, args.out_dir), end="")


if __name__ == "__main__":
    run(main)
