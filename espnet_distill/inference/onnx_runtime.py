"""ONNX Runtime sessions of a model exported by :mod:`espnet_distill.export.onnx`."""

from pathlib import Path
from typing import List, Tuple

import numpy as np

FP32_NAME, INT8_NAME, META_NAME = "model.onnx", "model.int8.onnx", "model.json"
# ONNX Runtime's fusion of residual Add + LayerNorm into SkipLayerNormalization makes these graphs slower
# on x86 (paper-scale Fbank student, 1 thread: int8 RTF 0.0162 fused, 0.0137 not); sessions turn it off.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def greedy_ids(log_probs: np.ndarray, length: int) -> List[int]:
    """Best path, repeats merged, blanks (id 0) removed."""
    best = log_probs[:length].argmax(-1).tolist()
    return [t for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]


class OnnxCTC:
    """An exported model run by ONNX Runtime (``threads`` intra-op threads)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )

    def __call__(self, speech: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        log_probs, frame_lengths = self.session.run(
            None, {"speech": speech.astype(np.float32), "lengths": lengths.astype(np.int64)}
        )
        return log_probs, frame_lengths
