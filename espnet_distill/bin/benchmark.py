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
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_wav_scp
from espnet_distill.distill.export import build_student, load_student
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging
from espnet_distill.utils.machine import machine_description, machine_line

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def load_model(path: Path) -> Tuple[torch.nn.Module, torch.nn.Module, Dict[str, Any], bool]:
    """``(frontend, encoder, description, trained)`` of an exported model dir or a description YAML."""
    if path.is_dir():
        return (*load_student(path), True)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: neither a model directory (student.yaml, student.pth) nor a YAML description")
    description = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [k for k in ("frontend", "encoder") if k not in description]
    if missing:
        raise ValueError(f"{path}: a model description needs {', '.join(missing)}")
    description.setdefault("frontend_conf", {})
    description.setdefault("encoder_conf", {})
    frontend, encoder = build_student(description)
    return frontend.eval(), encoder.eval(), description, False


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs_per_second(frontend: torch.nn.Module, encoder: torch.nn.Module, seconds: float) -> float:
    samples = int(seconds * SAMPLE_RATE)
    speech = torch.randn(1, samples) * 0.1
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        feats, lengths = frontend(speech, torch.tensor([samples]))
        encoder(feats, lengths)
    return counter.get_total_flops() / 2.0 / seconds


def read_utterances(data_dir: Path, max_utts: Optional[int]) -> List[torch.Tensor]:
    waves = []
    for utt, spec in read_wav_scp(data_dir / "wav.scp").items():
        samples, _ = read_audio(utt, spec, expected_rate=SAMPLE_RATE)
        waves.append(torch.from_numpy(samples)[None])
        if max_utts is not None and len(waves) >= max_utts:
            break
    if not waves:
        raise ValueError(f"{data_dir}/wav.scp lists no utterances")
    return waves


def timed_passes(
    run: Callable[[Any], Any], items: Sequence[Any], audio_seconds: float, warmup: int, repeats: int
) -> Tuple[float, List[float]]:
    """Median and all per-pass real-time factors of ``run`` over ``items`` (``warmup`` of them run untimed first)."""
    for item in items[:warmup]:
        run(item)
    factors = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            run(item)
        factors.append((time.perf_counter() - start) / audio_seconds)
    return statistics.median(factors), factors


def real_time_factor(
    frontend: torch.nn.Module, encoder: torch.nn.Module, waves: List[torch.Tensor], warmup: int, repeats: int
) -> Tuple[float, List[float]]:
    """Median and all per-pass real-time factors at batch 1."""
    audio_seconds = sum(w.shape[1] for w in waves) / SAMPLE_RATE

    def run(wave: torch.Tensor) -> None:
        feats, lengths = frontend(wave, torch.tensor([wave.shape[1]]))
        encoder(feats, lengths)

    with torch.inference_mode():
        return timed_passes(run, waves, audio_seconds, warmup, repeats)


def wav_cnn_twin(name: str, results: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """The ``wav_cnn`` model with the same encoder as ``name``.

    Among several (students that differ only in their loss), the one named
    ``name`` without its ``_<front-end>`` suffix, else the first.
    """
    mine = results[name]
    twins = [
        other
        for other, result in results.items()
        if other != name
        and result["frontend"] == "wav_cnn"
        and result["encoder"] == mine["encoder"]
        and result["encoder_conf"] == mine["encoder_conf"]
    ]
    suffix = "_" + mine["frontend"]
    if name.endswith(suffix) and name[: -len(suffix)] in twins:
        return name[: -len(suffix)]
    return twins[0] if twins else None


def benchmark(args: argparse.Namespace) -> Dict[str, Any]:
    torch.set_num_threads(args.num_threads)
    waves = read_utterances(args.data_dir, args.max_utts)
    audio_seconds = sum(w.shape[1] for w in waves) / SAMPLE_RATE
    results: Dict[str, Dict[str, Any]] = {}
    for name, path in args.model:
        frontend, encoder, description, trained = load_model(path)
        torch.manual_seed(0)
        rtf, factors = real_time_factor(frontend, encoder, waves, args.warmup, args.repeats)
        results[name] = {
            "path": str(path),
            "trained": trained,
            "frontend": description["frontend"],
            "encoder": description["encoder"],
            "encoder_conf": description["encoder_conf"],
            "params": count_parameters(frontend) + count_parameters(encoder),
            "frontend_params": count_parameters(frontend),
            "macs_per_second": macs_per_second(frontend, encoder, args.macs_seconds),
            "rtf": rtf,
            "rtf_passes": factors,
        }
        logger.info("%s: %d parameters, RTF %.4f", name, results[name]["params"], rtf)
    reference = args.reference or args.model[0][0]
    if reference not in results:
        raise ValueError(f"--reference {reference!r} is not one of the models: {', '.join(results)}")
    for name, result in results.items():
        result["speedup_vs_reference"] = results[reference]["rtf"] / result["rtf"]
        twin = wav_cnn_twin(name, results) if result["frontend"] != "wav_cnn" else None
        if twin is not None:
            result["wav_cnn_twin"] = twin
            result["speedup_vs_wav_cnn"] = results[twin]["rtf"] / result["rtf"]
            result["params_vs_wav_cnn"] = result["params"] / results[twin]["params"] - 1.0
    return {
        "machine": machine_description(),
        "data_dir": str(args.data_dir),
        "utterances": len(waves),
        "audio_seconds": audio_seconds,
        "num_threads": args.num_threads,
        "batch_size": 1,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "reference": reference,
        "models": results,
    }


def to_markdown(report: Dict[str, Any]) -> str:
    lines = [
        f"Batch 1, {report['num_threads']} thread(s), {report['utterances']} utterances of {report['data_dir']} "
        f"({report['audio_seconds']:.1f} s of audio), median of {report['repeats']} passes; front-end + encoder.",
        f"Measured on {machine_line(report['machine'])}." if "machine" in report else "",
        "",
        f"| model | front-end | params | front-end params | GMACs per s of audio | RTF | speed-up vs {report['reference']} "
        "| vs its wav_cnn twin (speed, params) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["models"].items():
        twin = (
            f"{r['speedup_vs_wav_cnn']:.2f}x, {100 * r['params_vs_wav_cnn']:+.1f}% ({r['wav_cnn_twin']})"
            if "wav_cnn_twin" in r
            else ""
        )
        lines.append(
            f"| {name}{'' if r['trained'] else ' (untrained)'} | {r['frontend']} | {r['params'] / 1e6:.2f} M "
            f"| {r['frontend_params'] / 1e6:.2f} M | {r['macs_per_second'] / 1e9:.3f} | {r['rtf']:.4f} "
            f"| {r['speedup_vs_reference']:.2f}x | {twin} |"
        )
    return "\n".join(lines) + "\n"


def model_arg(value: str) -> Tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


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
        report = benchmark(args)
    except (FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out_dir / "benchmark.json") as f:
        json.dump(report, f, indent=2)
    markdown = to_markdown(report)
    with atomic_write(args.out_dir / "benchmark.md") as f:
        f.write(markdown)
    print(markdown, end="")


if __name__ == "__main__":
    run(main)
