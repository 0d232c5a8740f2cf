"""Transcribe recordings with a fine-tuned model: ``<file> <text>`` per file (or JSON lines).

Any format and sample rate libsndfile reads (channels averaged, other rates
resampled to 16 kHz), any length (long recordings in overlapping chunks
stitched frame by frame), greedy or CTC prefix beam search, PyTorch (an ASR
exp dir) or ONNX Runtime (an ``export_onnx`` dir) backend.  A file that cannot
be transcribed (unreadable, truncated, too short, or failing in the model) is
reported on stderr by name and the rest continue; the exit status is then 1.
An ``export_onnx`` dir is checked before use: its files against its
``SHA256SUMS`` (when it has one), ``tokens.txt`` against the graph's output
size, and ``model.json``'s frame geometry against the graph.

    python -m espnet_distill.bin.transcribe --model exp/asr_deep_thin_reg_kl_train talk.flac meeting.wav
    python -m espnet_distill.bin.transcribe --model exp/onnx_x --int8 true --format json --beam_size 8 *.wav
    python -m espnet_distill.bin.transcribe --model exp/asr_x --beam_size 10 --lm exp/lm_char --lm_weight 0.5 talk.flac

With ``--lm`` (an ``lm_train`` exp dir, or a model file in one) and a
``--lm_weight`` other than 0, the beam search is fused with the LM, for either
backend (the LM runs in PyTorch); a long recording is decoded as one sequence,
so the LM sees its whole text across chunk seams.  The LM's token list must be
the model's (else an error naming both files).
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

from espnet_distill.utils.cli import run
from espnet_distill.utils.config import positive_int, str2bool
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from espnet_distill.inference.transcribe import Backend, Transcript


def get_parser() -> argparse.ArgumentParser:
    """The command line of ``transcribe``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="recordings")
    parser.add_argument(
        "--model", type=Path, required=True, help="a fine-tuning exp dir, or an export_onnx dir (model.json)"
    )
    parser.add_argument(
        "--checkpoint", default=None, help="PyTorch: model file in --model (default: the averaged best)"
    )
    parser.add_argument("--int8", type=str2bool, default=False, help="ONNX: the int8 model")
    parser.add_argument("--beam_size", type=int, default=1, help="1: greedy; more: CTC prefix beam search")
    parser.add_argument("--lm", type=Path, default=None, help="an lm_train exp dir (or a model file in one)")
    parser.add_argument("--lm_weight", type=float, default=0.0, help="the LM's weight in the beam search (0: no LM)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--chunk_seconds", type=float, default=30.0, help="longer recordings are decoded in chunks")
    parser.add_argument(
        "--context_seconds", type=float, default=4.0, help="audio each chunk sees beyond the frames it gives"
    )
    parser.add_argument("--num_threads", type=positive_int, default=1, help="intra-op threads (at least 1)")
    return parser


def _load_backend(args: argparse.Namespace) -> "Backend":
    """The backend of ``--model`` (ONNX Runtime for an ``export_onnx`` dir, else PyTorch); exit 1 naming a bad one.

    An ONNX model dir needs neither torch nor ESPnet: the PyTorch backend imports them (and the beam search
    imports ESPnet) only when used.  ESPnet's import-time print is kept off stdout, which carries the
    transcripts only, by the import hook of ``import espnet_distill`` (:mod:`espnet_distill.seams`).
    """
    from espnet_distill.files.onnx_dir import is_onnx_dir
    from espnet_distill.inference.transcribe import OnnxBackend, TorchBackend

    onnx = is_onnx_dir(args.model)
    if not onnx or args.beam_size > 1:  # the PyTorch backend, ESPnet's beam search or the LM runs in torch
        import torch

        torch.set_num_threads(args.num_threads)
    try:
        if onnx:
            return OnnxBackend(args.model, args.int8, args.num_threads)
        return TorchBackend(args.model, args.checkpoint)
    except (FileNotFoundError, ValueError) as e:  # CheckpointError is a ValueError
        logger.error("%s", e)
        raise SystemExit(1) from e


def _load_lm(args: argparse.Namespace, backend: "Backend") -> Any:
    """The LM of ``--lm`` checked against the model's token list, or None; exit 1 naming a bad one."""
    if args.lm is None or args.lm_weight == 0:
        return None
    from espnet_distill.files.onnx_dir import is_onnx_dir, tokens_file
    from espnet_distill.inference.lm import load_lm

    tokens_source = tokens_file(args.model) if is_onnx_dir(args.model) else args.model / "config.yaml"
    try:
        return load_lm(args.lm, backend.token_list, tokens_source)
    except (FileNotFoundError, ValueError) as e:  # CheckpointError and TokenListMismatch are ValueErrors
        logger.error("%s", e)
        raise SystemExit(1) from e


def _transcribe_file(path: Path, backend: "Backend", args: argparse.Namespace, lm: Any = None) -> "Transcript":
    """One recording's transcript; a ``ValueError``, ``RuntimeError`` or ``MemoryError`` if it cannot be made."""
    from espnet_distill.inference.audio import TranscribeError, load_audio
    from espnet_distill.inference.ctc_search import decode_log_probs
    from espnet_distill.inference.transcribe import Transcript, chunked_log_probs

    wave = load_audio(path)
    if len(wave) < backend.min_samples:
        raise TranscribeError(
            f"{path}: {len(wave)} samples at 16 kHz is shorter than the model's receptive field ({backend.min_samples})"
        )
    start = time.perf_counter()
    log_probs, chunks = chunked_log_probs(
        backend.log_probs,
        wave,
        backend.frame_shift,
        backend.min_samples,
        args.chunk_seconds,
        args.context_seconds,
    )
    text = decode_log_probs(log_probs, backend.tokenizer, args.beam_size, lm, args.lm_weight)
    return Transcript(str(path), text, len(wave) / 16000, time.perf_counter() - start, chunks)


def main(argv: Optional[List[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.context_seconds < 0 or args.chunk_seconds <= 2 * args.context_seconds:
        parser.error(
            f"--chunk_seconds {args.chunk_seconds:g} must exceed twice --context_seconds {args.context_seconds:g} (>= 0)"
        )
    if args.lm_weight != 0 and (args.lm is None or args.beam_size <= 1):
        parser.error("--lm_weight needs --lm (the LM to fuse) and a --beam_size above 1")
    setup_logging()
    backend = _load_backend(args)
    lm = _load_lm(args, backend)
    failed = 0
    for path in args.files:
        try:
            result = _transcribe_file(path, backend, args, lm)
        except (ValueError, RuntimeError, MemoryError) as e:  # this file only: the others are still transcribed
            message = (str(e).strip() or type(e).__name__).splitlines()[0]
            logger.error("%s", message if message.startswith(str(path)) else f"{path}: {message}")
            failed += 1
            continue
        print(result.line(args.format), flush=True)
    if failed:
        logger.error("%d of %d files could not be transcribed", failed, len(args.files))
        sys.exit(1)


if __name__ == "__main__":
    run(main)
