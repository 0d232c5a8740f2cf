"""The deployed models timed (``bin/benchmark_deploy``): ``deploy.json`` and ``deploy.md``.

Each model (a fine-tuning exp dir, or a description YAML given random weights and a CTC layer) is
exported to ONNX, fp32 and int8, and PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime int8 are timed on
the whole inference path (waveform to CTC log-probabilities) at batch 1, at each number of threads.
"""

import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

from espnet_distill.benchmark.inputs import SAMPLE_RATE
from espnet_distill.benchmark.timing import timed_passes
from espnet_distill.utils.checksums import verify_sums
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.machine import machine_description, machine_line

logger = logging.getLogger(__name__)

BACKENDS = ("pytorch_fp32", "onnx_fp32", "onnx_int8")


def _random_exp(description_yaml: Path, vocab: int, out: Path) -> Path:
    """A fine-tuning exp dir (config.yaml, model.pth) of a description YAML with random weights, ``vocab`` tokens."""
    from espnet_distill.asr.build import write_random_ctc_exp

    description = yaml.safe_load(description_yaml.read_text(encoding="utf-8"))
    tokens = ["<blank>", "<unk>", *[f"t{i}" for i in range(vocab - 3)], "<sos/eos>"]
    return write_random_ctc_exp(description, tokens, out)


def export_model(
    name: str, path: Path, out_dir: Path, vocab: int, work: Path, calibration: Optional[List[np.ndarray]]
) -> Tuple[torch.nn.Module, Path]:
    """The model of ``path`` loaded and exported (fp32 and int8) into ``<out_dir>/<name>``: ``(model, onnx_dir)``."""
    from espnet_distill.export.onnx import export_onnx
    from espnet_distill.files.onnx_dir import FP32_NAME, INT8_NAME
    from espnet_distill.inference.decode import load_asr_model

    trained = path.is_dir()
    exp = path if trained else _random_exp(path, vocab, work / f"{name}_exp")
    checkpoint = None if trained else "model.pth"
    onnx_dir = out_dir / name
    model, train_args = load_asr_model(exp, checkpoint)  # exported and timed (the export leaves it as it is)
    export_onnx(exp, onnx_dir, checkpoint, int8=True, calibration=calibration, loaded=(model, train_args))
    verify_sums(onnx_dir, [FP32_NAME, INT8_NAME])  # the files timed are the ones exported
    return model, onnx_dir


def backends(forward: torch.nn.Module, onnx_dir: Path, threads: int) -> Dict[str, Callable[[np.ndarray], Any]]:
    """One waveform through each backend: PyTorch (``forward``), the fp32 and int8 ONNX Runtime sessions."""
    from espnet_distill.files.onnx_dir import FP32_NAME, INT8_NAME
    from espnet_distill.inference.onnx_runtime import OnnxCTC

    def run_torch(wave: np.ndarray) -> None:
        with torch.inference_mode():
            forward(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))

    runs: Dict[str, Callable[[np.ndarray], Any]] = {"pytorch_fp32": run_torch}
    for key, file in (("onnx_fp32", FP32_NAME), ("onnx_int8", INT8_NAME)):
        session = OnnxCTC(onnx_dir / file, threads)
        runs[key] = lambda wave, s=session: s(wave[None], np.array([len(wave)]))
    return runs


def benchmark_model(
    name: str,
    path: Path,
    waves: List[np.ndarray],
    calibration: Optional[List[np.ndarray]],
    *,
    out_dir: Path,
    work: Path,
    vocab: int,
    threads: Sequence[int],
    warmup: int,
    repeats: int,
) -> Dict[str, Any]:
    """One model's row of ``deploy.json``: its size on disk per backend and its real-time factors."""
    from espnet_distill.files.onnx_dir import FP32_NAME, INT8_NAME
    from espnet_distill.inference.forward import CTCInference

    trained = path.is_dir()
    model, onnx_dir = export_model(name, path, out_dir, vocab, work, calibration)
    forward = CTCInference(model).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    row: Dict[str, Any] = {
        "model": name,
        "trained": trained,
        "frontend": str(model.frontend.__class__.__name__),
        "params": sum(p.numel() for p in model.parameters()),
        "size_mb": {
            "pytorch_fp32": buffer.getbuffer().nbytes / 1e6,
            "onnx_fp32": (onnx_dir / FP32_NAME).stat().st_size / 1e6,
            "onnx_int8": (onnx_dir / INT8_NAME).stat().st_size / 1e6,
        },
        "rtf": {},
    }
    audio_seconds = sum(len(w) for w in waves) / SAMPLE_RATE
    for count in threads:
        torch.set_num_threads(count)
        for key, backend in backends(forward, onnx_dir, count).items():
            row["rtf"][f"{key}@{count}"], _ = timed_passes(backend, waves, audio_seconds, warmup, repeats)
            logger.info("%s %s at %d threads: RTF %.4f", name, key, count, row["rtf"][f"{key}@{count}"])
    return row


def benchmark_deploy(
    models: Sequence[Tuple[str, Path]],
    data_dir: Path,
    waves: List[np.ndarray],
    calibration: Optional[List[np.ndarray]],
    *,
    out_dir: Path,
    reference: Optional[str],
    vocab: int,
    threads: List[int],
    warmup: int,
    repeats: int,
) -> Dict[str, Any]:
    """The report of ``deploy.json``: every model of ``models`` exported into ``<out_dir>/<name>`` and timed over
    ``waves`` (the utterances of ``data_dir``); speed-ups against ``reference`` (default: the first)."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, path in models:
            rows.append(
                benchmark_model(
                    name,
                    path,
                    waves,
                    calibration,
                    out_dir=out_dir,
                    work=Path(work),
                    vocab=vocab,
                    threads=threads,
                    warmup=warmup,
                    repeats=repeats,
                )
            )
    return {
        "machine": machine_description(),
        "data_dir": str(data_dir),
        "utterances": len(waves),
        "audio_seconds": sum(len(w) for w in waves) / SAMPLE_RATE,
        "threads": threads,
        "reference": reference or rows[0]["model"],
        "models": rows,
    }


def to_markdown(rows: List[Dict[str, Any]], reference: float, threads: List[int]) -> str:
    header = [
        "model",
        "backend",
        "params",
        "size (MB)",
        *[f"RTF {t} thr" for t in threads],
        f"vs reference ({threads[0]} thr)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        for backend in BACKENDS:
            rtfs = [row["rtf"][f"{backend}@{t}"] for t in threads]
            lines.append(
                "| "
                + " | ".join(
                    [
                        row["model"],
                        backend,
                        f"{row['params'] / 1e6:.2f} M",
                        f"{row['size_mb'][backend]:.1f}",
                        *[f"{r:.4f}" for r in rtfs],
                        f"{reference / rtfs[0]:.2f}x",
                    ]
                )
                + " |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: Dict[str, Any], out_dir: Path) -> str:
    """``<out_dir>/deploy.json`` and ``deploy.md`` (speed-ups against the reference model's PyTorch fp32 RTF at
    the first number of threads); returns the markdown."""
    threads = report["threads"]
    rows = report["models"]
    reference = next(r for r in rows if r["model"] == report["reference"])["rtf"][f"pytorch_fp32@{threads[0]}"]
    with atomic_write(out_dir / "deploy.json") as f:
        json.dump(report, f, indent=2)
    markdown = f"Measured on {machine_line(report['machine'])}.\n\n" + to_markdown(rows, reference, threads)
    with atomic_write(out_dir / "deploy.md") as f:
        f.write(markdown)
    return markdown
