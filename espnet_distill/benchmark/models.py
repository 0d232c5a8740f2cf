"""Size and CPU speed of front-end + encoder models (``bin/benchmark``): ``benchmark.json`` and ``benchmark.md``.

A model is an exported model directory (``student.yaml``, ``student.pth``) or a ``student.yaml``-style
description YAML, built with random weights.  Each is measured for its parameters, its multiply-accumulates
per second of audio and its CPU real-time factor at batch 1, then compared with the reference model and
with its ``wav_cnn`` twin.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from espnet_distill.benchmark.inputs import SAMPLE_RATE, read_utterances
from espnet_distill.benchmark.timing import timed_passes
from espnet_distill.distill.export import build_student, load_student
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.machine import machine_description, machine_line

logger = logging.getLogger(__name__)


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


def measure(path: Path, waves: List[torch.Tensor], warmup: int, repeats: int, macs_seconds: float) -> Dict[str, Any]:
    """One model's entry of ``benchmark.json``: what it is, its size, its MACs and its real-time factors."""
    frontend, encoder, description, trained = load_model(path)
    torch.manual_seed(0)
    rtf, factors = real_time_factor(frontend, encoder, waves, warmup, repeats)
    return {
        "path": str(path),
        "trained": trained,
        "frontend": description["frontend"],
        "encoder": description["encoder"],
        "encoder_conf": description["encoder_conf"],
        "params": count_parameters(frontend) + count_parameters(encoder),
        "frontend_params": count_parameters(frontend),
        "macs_per_second": macs_per_second(frontend, encoder, macs_seconds),
        "rtf": rtf,
        "rtf_passes": factors,
    }


def add_speedups(results: Dict[str, Dict[str, Any]], reference: str) -> None:
    """Each model's speed-up against ``reference`` and, off ``wav_cnn``, against its ``wav_cnn`` twin."""
    if reference not in results:
        raise ValueError(f"--reference {reference!r} is not one of the models: {', '.join(results)}")
    for name, result in results.items():
        result["speedup_vs_reference"] = results[reference]["rtf"] / result["rtf"]
        twin = wav_cnn_twin(name, results) if result["frontend"] != "wav_cnn" else None
        if twin is not None:
            result["wav_cnn_twin"] = twin
            result["speedup_vs_wav_cnn"] = results[twin]["rtf"] / result["rtf"]
            result["params_vs_wav_cnn"] = result["params"] / results[twin]["params"] - 1.0


def benchmark(
    models: Sequence[Tuple[str, Path]],
    data_dir: Path,
    *,
    reference: Optional[str],
    num_threads: int,
    repeats: int,
    warmup: int,
    max_utts: Optional[int],
    macs_seconds: float,
) -> Dict[str, Any]:
    """The report of ``benchmark.json``: every model of ``models`` measured over the utterances of ``data_dir``
    (speed-ups against ``reference``, default: the first)."""
    torch.set_num_threads(num_threads)
    waves = read_utterances(data_dir, max_utts)
    audio_seconds = sum(w.shape[1] for w in waves) / SAMPLE_RATE
    results: Dict[str, Dict[str, Any]] = {}
    for name, path in models:
        results[name] = measure(path, waves, warmup, repeats, macs_seconds)
        logger.info("%s: %d parameters, RTF %.4f", name, results[name]["params"], results[name]["rtf"])
    reference = reference or models[0][0]
    add_speedups(results, reference)
    return {
        "machine": machine_description(),
        "data_dir": str(data_dir),
        "utterances": len(waves),
        "audio_seconds": audio_seconds,
        "num_threads": num_threads,
        "batch_size": 1,
        "repeats": repeats,
        "warmup": warmup,
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


def write_report(report: Dict[str, Any], out_dir: Path) -> str:
    """``<out_dir>/benchmark.json`` and ``benchmark.md``; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "benchmark.json") as f:
        json.dump(report, f, indent=2)
    markdown = to_markdown(report)
    with atomic_write(out_dir / "benchmark.md") as f:
        f.write(markdown)
    return markdown
