"""Deployed models timed: PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime int8, at 1 and more threads.

Each ``--model NAME=PATH`` is a fine-tuning exp dir (the trained model with its
CTC layer) or a ``student.yaml``-style description YAML (random weights and a
``--vocab``-sized CTC layer: enough for timing, e.g. the paper-scale
structures of ``conf/benchmark/``).  Every model is exported with
``export_onnx`` into ``<out_dir>/<name>/`` and each backend is timed on the
whole inference path (waveform to CTC log-probabilities) at batch 1 over the
utterances of ``--data_dir``: the median real-time factor of ``--repeats``
passes after ``--warmup`` utterances.  Size on disk is the model file
(PyTorch: the float32 state dict as ``torch.save`` writes it).

Writes ``<out_dir>/deploy.json`` and ``deploy.md``; speed-ups are against the
first backend of the ``--reference`` model (default: the first model) at 1 thread.

    python -m espnet_distill.bin.benchmark_deploy --data_dir data/test --max_utts 20 --out_dir exp/deploy \\
        --model paper_hubert_base=conf/benchmark/paper_hubert_base.yaml \\
        --model paper_deep_thin_fbank=conf/benchmark/paper_deep_thin_fbank.yaml
"""

import argparse
from pathlib import Path
from typing import List, Optional

from espnet_distill.benchmark.deploy import benchmark_deploy, write_report
from espnet_distill.benchmark.inputs import model_arg, read_utterances
from espnet_distill.inference.decode import calibration_waves
from espnet_distill.utils.cli import check_output_dir, run
from espnet_distill.utils.log import setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=model_arg, action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--reference", default=None, help="model whose PyTorch fp32 RTF the speed-ups are against")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max_utts", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=32, help="CTC outputs of a description YAML's random model")
    parser.add_argument(
        "--calibration_dir",
        type=Path,
        default=None,
        help="data dir whose audio calibrates the int8 convolutions (export_onnx --calibration_dir)",
    )
    parser.add_argument("--calibration_utts", type=int, default=32)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    check_output_dir(args.out_dir)  # before any model is built, exported or timed
    waves = [w[0].numpy() for w in read_utterances(args.data_dir, args.max_utts)]
    calibration = None
    if args.calibration_dir is not None:
        calibration = calibration_waves(args.calibration_dir, args.calibration_utts)
    report = benchmark_deploy(
        args.model,
        args.data_dir,
        waves,
        calibration,
        out_dir=args.out_dir,
        reference=args.reference,
        vocab=args.vocab,
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    print(write_report(report, args.out_dir), end="")


if __name__ == "__main__":
    run(main)
