"""ONNX Runtime sessions of a model exported by :mod:`espnet_distill.export.onnx`, and the checks of an export dir.

An export dir is read only after what it says is checked against what it holds:
its files against ``SHA256SUMS`` (when there is one), ``model.json``'s keys,
the token list's length against the graph's output size, and ``model.json``'s
frame geometry (``frame_shift``, ``min_samples``) against the graph, run once
on short probes.  Each failure is a :class:`ModelDirError` naming the file.
The directory's file names and ``model.json``'s reader are :mod:`espnet_distill.files.onnx_dir`'s.
"""

import math
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from espnet_distill.files.onnx_dir import ModelDirError

# ONNX Runtime's fusion of residual Add + LayerNorm into SkipLayerNormalization makes these graphs slower
# on x86 (paper-scale Fbank student, 1 thread: int8 RTF 0.0162 fused, 0.0137 not); sessions turn it off.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
SAMPLE_RATE = 16000


class OnnxRunError(ValueError):
    """ONNX Runtime failed to run a graph on an input."""


def onnxruntime_errors() -> Tuple[type, ...]:
    """The exception classes ONNX Runtime raises (they derive from ``Exception`` only), and ``RuntimeError``."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = [getattr(state, name, None) for name in dir(state)]
    return (RuntimeError, *(c for c in found if isinstance(c, type) and issubclass(c, Exception)))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class OnnxCTC:
    """An exported model run by ONNX Runtime (``threads`` intra-op threads).

    A file ONNX Runtime cannot load is a :class:`ModelDirError` naming it; a
    failed run is an :class:`OnnxRunError`.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelDirError(f"{self.path}: no such model file")
        if self.path.stat().st_size == 0:
            raise ModelDirError(f"{self.path}: the model file is empty")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
            )
        except onnxruntime_errors() as e:
            raise ModelDirError(f"{self.path}: not an ONNX model ONNX Runtime can load: {_first_line(e)}") from e
        # A failed run is reported by the exception it raises; ONNX Runtime need not also log it on stderr.
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4
        self._errors = onnxruntime_errors()

    def __call__(self, speech: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        try:
            log_probs, frame_lengths = self.session.run(
                None,
                {"speech": speech.astype(np.float32), "lengths": lengths.astype(np.int64)},
                self.run_options,
            )
        except self._errors as e:
            raise OnnxRunError(f"ONNX Runtime failed running {self.path.name}: {_first_line(e)}") from e
        return log_probs, frame_lengths

    def static_vocab(self) -> Optional[int]:
        """The output vocabulary size when the graph's ``log_probs`` shape states it, else None."""
        shape = self.session.get_outputs()[0].shape
        return shape[-1] if shape and isinstance(shape[-1], int) and shape[-1] > 0 else None


def _probe(length: int) -> np.ndarray:
    """A quiet noise waveform of ``length`` samples (deterministic)."""
    return (np.random.default_rng(0).standard_normal(length) * 0.01).astype(np.float32)


def probe_graph(session: OnnxCTC, meta_file: Path, frame_shift: int, min_samples: int) -> int:
    """Check ``frame_shift`` and ``min_samples`` (of ``meta_file``) against the graph; return its output size.

    The graph is run on ``min_samples`` samples and on ``k`` frame shifts more
    (about a second, ``k >= 2``): the first must give at least one frame, the
    second exactly ``k`` more, and each as many valid frames (``frame_lengths``)
    as it has.  Transcription relies on both (chunks start at whole frames; a
    recording's frame count is computed from them), so a ``model.json`` that
    does not fit its graph is refused here rather than failing on a long or a
    short recording.  The frame shift is checked to ``1/k`` of itself.
    """
    k = max(2, math.ceil(SAMPLE_RATE / frame_shift))
    frames = []
    for length in (min_samples, min_samples + k * frame_shift):
        try:
            out, lengths = session(_probe(length)[None], np.array([length]))
        except OnnxRunError as e:
            raise ModelDirError(
                f"{meta_file}: min_samples {min_samples} / frame_shift {frame_shift} do not fit {session.path.name}: "
                f"the graph fails on {length} samples ({e})"
            ) from e
        if out.ndim != 3 or out.shape[0] != 1 or lengths.shape != (1,) or int(lengths[0]) != out.shape[1]:
            raise ModelDirError(
                f"{session.path}: gives log_probs of shape {out.shape} and frame_lengths {lengths.tolist()} "
                f"for one input of {length} samples; expected (1, frames, vocab) and [frames]"
            )
        frames.append(out.shape[1])
    if frames[0] < 1:
        raise ModelDirError(
            f"{meta_file}: min_samples {min_samples} does not fit {session.path.name}: "
            f"{min_samples} samples give {frames[0]} frames, not at least 1"
        )
    if frames[1] - frames[0] != k:
        raise ModelDirError(
            f"{meta_file}: frame_shift {frame_shift} does not fit {session.path.name}: {k} frame shifts more "
            f"({k * frame_shift} samples) give {frames[1] - frames[0]} frames more, not {k}"
        )
    return int(out.shape[2])
