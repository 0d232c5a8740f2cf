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
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import yaml

from espnet_distill.bin.benchmark import model_arg, read_utterances, timed_passes
from espnet_distill.inference.decode import calibration_waves
from espnet_distill.utils.checksums import verify_sums
from espnet_distill.utils.cli import check_output_dir, run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging
from espnet_distill.utils.machine import machine_description, machine_line

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def _random_exp(description_yaml: Path, vocab: int, out: Path) -> Path:
    """A fine-tuning exp dir (config.yaml, model.pth) of a description YAML with random weights, ``vocab`` tokens."""
    from espnet_distill.asr.build import write_random_ctc_exp

    description = yaml.safe_load(description_yaml.read_text(encoding="utf-8"))
    tokens = ["<blank>", "<unk>", *[f"t{i}" for i in range(vocab - 3)], "<sos/eos>"]
    return write_random_ctc_exp(description, tokens, out)


def benchmark_model(
    name: str,
    path: Path,
    args: argparse.Namespace,
    waves: List[np.ndarray],
    work: Path,
    calibration: Optional[List[np.ndarray]],
) -> Dict[str, Any]:
    from espnet_distill.export.onnx import export_onnx
    from espnet_distill.files.onnx_dir import FP32_NAME, INT8_NAME
    from espnet_distill.inference.decode import load_asr_model
    from espnet_distill.inference.forward import CTCInference
    from espnet_distill.inference.onnx_runtime import OnnxCTC

    trained = path.is_dir()
    exp = path if trained else _random_exp(path, args.vocab, work / f"{name}_exp")
    checkpoint = None if trained else "model.pth"
    onnx_dir = args.out_dir / name
    model, train_args = load_asr_model(exp, checkpoint)  # exported and timed (the export leaves it as it is)
    export_onnx(exp, onnx_dir, checkpoint, int8=True, calibration=calibration, loaded=(model, train_args))
    verify_sums(onnx_dir, [FP32_NAME, INT8_NAME])  # the files timed are the ones exported
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
    for threads in args.threads:
        torch.set_num_threads(threads)

        def run_torch(wave: np.ndarray) -> None:
            with torch.inference_mode():
                forward(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))

        backends = {"pytorch_fp32": run_torch}
        for key, file in (("onnx_fp32", FP32_NAME), ("onnx_int8", INT8_NAME)):
            session = OnnxCTC(onnx_dir / file, threads)
            backends[key] = lambda wave, s=session: s(wave[None], np.array([len(wave)]))
        for key, backend in backends.items():
            row["rtf"][f"{key}@{threads}"], _ = timed_passes(backend, waves, audio_seconds, args.warmup, args.repeats)
            logger.info("%s %s at %d threads: RTF %.4f", name, key, threads, row["rtf"][f"{key}@{threads}"])
    return row


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
        for backend in ("pytorch_fp32", "onnx_fp32", "onnx_int8"):
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


def main(argv: Optional[List[str]] = None) -> None:
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
    args = parser.parse_args(argv)
    setup_logging()
    check_output_dir(args.out_dir)  # before any model is built, exported or timed
    waves = [w[0].numpy() for w in read_utterances(args.data_dir, args.max_utts)]
    calibration = None
    if args.calibration_dir is not None:
        calibration = calibration_waves(args.calibration_dir, args.calibration_utts)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, path in args.model:
            rows.append(benchmark_model(name, path, args, waves, Path(work), calibration))
    reference_name = args.reference or rows[0]["model"]
    reference = next(r for r in rows if r["model"] == reference_name)["rtf"][f"pytorch_fp32@{args.threads[0]}"]
    report = {
        "machine": machine_description(),
        "data_dir": str(args.data_dir),
        "utterances": len(waves),
        "audio_seconds": sum(len(w) for w in waves) / SAMPLE_RATE,
        "threads": args.threads,
        "reference": reference_name,
        "models": rows,
    }
    with atomic_write(args.out_dir / "deploy.json") as f:
        json.dump(report, f, indent=2)
    markdown = f"Measured on {machine_line(report['machine'])}.\n\n" + to_markdown(rows, reference, args.threads)
    with atomic_write(args.out_dir / "deploy.md") as f:
        f.write(markdown)
    print(markdown, end="")


if __name__ == "__main__":
    run(main)
