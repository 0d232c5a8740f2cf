"""Transcription of a person's own recordings: any format libsndfile reads, any length.

- Audio: :func:`espnet_distill.inference.audio.load_audio` (every channel
  averaged to mono; another sample rate resampled to 16 kHz).
- Length: a recording longer than ``chunk_seconds`` is run in chunks that
  overlap by ``context_seconds`` on each side.  Chunk starts are whole encoder
  frames, so each chunk's frames are frames of the whole recording; each frame
  is taken from the chunk where it is furthest from an edge, and the CTC
  log-probabilities of the whole recording are decoded once.  No word is cut
  or repeated at a seam (a seam is between two frames, not between two texts).
- Backends: PyTorch (a fine-tuning exp dir) or ONNX Runtime (an
  ``export_onnx`` dir, fp32 or int8); greedy or CTC prefix beam search
  (:mod:`espnet_distill.inference.ctc_search`, over the log-probabilities).

Importing this module, and running the ONNX Runtime backend, imports neither
torch nor ESPnet: the PyTorch backend imports them when it is built, the beam
search when it runs, and the resampler when a recording is not at 16 kHz.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from espnet_distill.files.onnx_dir import (
    META_NAME,
    TOKENS_NAME,
    ModelDirError,
    meta_file,
    model_file,
    read_meta,
    tokens_file,
)
from espnet_distill.inference.audio import SAMPLE_RATE
from espnet_distill.inference.onnx_runtime import OnnxCTC, probe_graph
from espnet_distill.text.tokens import Tokenizer, read_token_list
from espnet_distill.utils.checksums import verify_sums


class Backend:
    """What decoding needs of a model: log-probabilities of one waveform, its tokens and frame geometry."""

    token_list: List[str]
    tokenizer: Tokenizer
    frame_shift: int
    min_samples: int

    def log_probs(self, wave: np.ndarray) -> np.ndarray:  # (frames, vocab)
        raise NotImplementedError


class TorchBackend(Backend):
    """A fine-tuning exp dir run by PyTorch (torch and ESPnet are imported here, not with the module)."""

    def __init__(self, exp_dir: Path, checkpoint: Optional[str] = None) -> None:
        from espnet_distill.inference.decode import load_asr_model, min_samples
        from espnet_distill.inference.forward import CTCInference

        model, args = load_asr_model(exp_dir, checkpoint)
        self.forward = CTCInference(model).eval()
        self.token_list = list(args.token_list)
        self.tokenizer = Tokenizer(self.token_list, args.token_type, args.bpemodel)
        self.frame_shift = int(model.frontend.frame_shift)
        self.min_samples = min_samples(model)

    def log_probs(self, wave: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out, lengths = self.forward(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        return out[0, : int(lengths[0])].numpy()


class OnnxBackend(Backend):
    """An ``export_onnx`` dir, checked before use (see :mod:`espnet_distill.inference.onnx_runtime`).

    The files it reads (``model.json``, the model, ``tokens.txt``, the BPE
    model) are verified against the dir's ``SHA256SUMS`` when it has one; the
    token list must be as long as the graph's output and ``model.json``'s frame
    geometry must fit the graph.  Any failure is an error naming the file.
    """

    def __init__(self, onnx_dir: Path, int8: bool = False, threads: int = 1) -> None:
        model = model_file(onnx_dir, int8)
        meta_path = meta_file(onnx_dir)
        tokens = tokens_file(onnx_dir)
        if meta_path.is_file():
            verify_sums(onnx_dir, [META_NAME])
        meta = read_meta(onnx_dir)
        if not model.is_file():
            hint = " (--int8 true reads the int8 model: export with --int8 true)" if int8 else ""
            raise ModelDirError(f"{model}: no such model file{hint}")
        if not tokens.is_file():
            raise ModelDirError(f"{tokens}: no such file (an export_onnx directory has one)")
        read = [model.name, TOKENS_NAME]
        if meta.get("bpemodel"):
            if not (onnx_dir / meta["bpemodel"]).is_file():
                raise ModelDirError(f"{onnx_dir / meta['bpemodel']}: no such file ({meta_path} names it as bpemodel)")
            read.append(meta["bpemodel"])
        verify_sums(onnx_dir, read)
        self.session = OnnxCTC(model, threads)
        self.token_list = read_token_list(tokens)
        bpemodel = str(onnx_dir / meta["bpemodel"]) if meta.get("bpemodel") else None
        try:
            self.tokenizer = Tokenizer(self.token_list, meta["token_type"], bpemodel)
        except ValueError as e:
            raise ModelDirError(f"{meta_path}: {e}") from e
        self.frame_shift = int(meta["frame_shift"])
        self.min_samples = int(meta["min_samples"])
        vocab = probe_graph(self.session, meta_path, self.frame_shift, self.min_samples)
        static = self.session.static_vocab()
        if static is not None and static != vocab:
            raise ModelDirError(f"{model}: its output is declared {static} wide but is {vocab} wide")
        if len(self.token_list) != vocab:
            raise ModelDirError(
                f"{tokens}: {len(self.token_list)} tokens, but {model.name} gives "
                f"{vocab} log-probabilities per frame: the token list is not the model's"
            )

    def log_probs(self, wave: np.ndarray) -> np.ndarray:
        out, lengths = self.session(wave[None], np.array([len(wave)]))
        return out[0, : int(lengths[0])]


def chunked_log_probs(
    log_probs: Callable[[np.ndarray], np.ndarray],
    wave: np.ndarray,
    frame_shift: int,
    min_samples: int,
    chunk_seconds: float = 30.0,
    context_seconds: float = 4.0,
) -> Tuple[np.ndarray, int]:
    """The log-probabilities of ``wave`` and the number of chunks run (overlapping chunks when it is longer than one).

    Chunk ``k`` owns the frames from ``k * step`` to ``(k + 1) * step`` (``step``
    = chunk minus both contexts, in whole frames) and is run on those samples
    plus ``context`` on each side, so that no owned frame is near an edge.
    """
    chunk = int(chunk_seconds * SAMPLE_RATE)
    if len(wave) <= chunk:
        return log_probs(wave), 1
    context = max(1, math.ceil(context_seconds * SAMPLE_RATE / frame_shift)) * frame_shift
    step = (chunk - 2 * context) // frame_shift * frame_shift
    if step <= 0:
        raise ValueError(f"chunk_seconds {chunk_seconds} must exceed twice context_seconds {context_seconds}")
    total_frames = (len(wave) - min_samples) // frame_shift + 1
    pieces = []
    for owned_start in range(0, total_frames * frame_shift, step):
        first = owned_start // frame_shift  # owned global frames [first, last)
        last = min(total_frames, (owned_start + step) // frame_shift)
        begin = max(0, owned_start - context)  # a multiple of frame_shift: local frame j = global frame begin/shift + j
        end = min(len(wave), owned_start + step + context + min_samples)
        out = log_probs(wave[begin:end])
        offset = begin // frame_shift
        pieces.append(out[first - offset : last - offset])
    stitched = np.concatenate(pieces)
    if len(stitched) != total_frames:
        raise ValueError(
            f"stitched {len(stitched)} frames, expected {total_frames}: the model's frame_shift or min_samples is not its own"
        )
    return stitched, len(pieces)


@dataclass
class Transcript:
    file: str
    text: str
    duration: float  # seconds of audio
    seconds: float  # decoding wall time
    chunks: int

    def line(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(
                {
                    "file": self.file,
                    "text": self.text,
                    "duration": round(self.duration, 3),
                    "seconds": round(self.seconds, 3),
                    "rtf": round(self.seconds / max(self.duration, 1e-9), 4),
                    "chunks": self.chunks,
                },
                ensure_ascii=False,
            )
        return f"{self.file} {self.text}".rstrip()
