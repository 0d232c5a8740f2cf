"""An ONNX export directory: the graphs of a fine-tuned model, its tokens, ``model.json`` and ``SHA256SUMS``.

Written by :func:`espnet_distill.export.onnx.export_onnx` (``bin/export_onnx``, stage 10, the deployment
benchmark); read by transcription's ONNX Runtime backend
(:class:`espnet_distill.inference.transcribe.OnnxBackend`, ``bin/transcribe``), the deployment benchmark
and RESULTS.md (``recipe/make_results``: parity and CER of each backend).  It holds:

- ``model.onnx`` (:data:`FP32_NAME`) and, exported with int8, ``model.int8.onnx`` (:data:`INT8_NAME`):
  waveform in, CTC log-probabilities out;
- ``tokens.txt`` (:data:`TOKENS_NAME`), one token a line, and for a BPE model ``bpe.model`` (:data:`BPE_NAME`);
- ``model.json`` (:data:`META_NAME`): where the graphs came from, ``token_type``, ``bpemodel`` (a file name
  of the directory or null), the frame geometry (``frame_shift``, ``min_samples``: positive integers, the
  keys :data:`META_KEYS` every reader needs), the graphs' inputs and outputs, ``files``, ``int8`` and
  ``parity`` (null, or what :func:`espnet_distill.export.onnx.check_parity` measured);
- ``SHA256SUMS`` (:data:`SUMS_NAME`, :mod:`espnet_distill.utils.checksums`) of all these files.

This module imports nothing heavier than the standard library: the ONNX Runtime path of transcribe
imports neither torch nor ESPnet.
"""

import json
from pathlib import Path
from typing import Any, Dict, Union

from espnet_distill.utils.checksums import SUMS_NAME
from espnet_distill.utils.fileio import atomic_write

FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
META_NAME = "model.json"
TOKENS_NAME = "tokens.txt"
BPE_NAME = "bpe.model"
META_KEYS = ("token_type", "frame_shift", "min_samples")
POSITIVE_KEYS = ("frame_shift", "min_samples")

__all__ = [
    "BPE_NAME",
    "FP32_NAME",
    "INT8_NAME",
    "META_KEYS",
    "META_NAME",
    "SUMS_NAME",
    "TOKENS_NAME",
    "ModelDirError",
    "check_meta",
    "is_onnx_dir",
    "meta_file",
    "model_file",
    "read_meta",
    "tokens_file",
    "write_meta",
]

PathLike = Union[str, Path]


class ModelDirError(ValueError):
    """An export dir, or one of its files, that cannot be used; the message names the file."""


def meta_file(onnx_dir: PathLike) -> Path:
    return Path(onnx_dir) / META_NAME


def model_file(onnx_dir: PathLike, int8: bool = False) -> Path:
    """The graph transcription runs: ``model.int8.onnx`` with ``int8``, else ``model.onnx``."""
    return Path(onnx_dir) / (INT8_NAME if int8 else FP32_NAME)


def tokens_file(onnx_dir: PathLike) -> Path:
    return Path(onnx_dir) / TOKENS_NAME


def is_onnx_dir(path: PathLike) -> bool:
    """Whether ``path`` is an export dir (it has a ``model.json``), rather than, e.g., a fine-tuning exp dir."""
    return meta_file(path).is_file()


def check_meta(meta: Any, source: PathLike) -> Dict[str, Any]:
    """``meta`` if it is a ``model.json``'s contents (:data:`META_KEYS`, positive ``frame_shift`` and
    ``min_samples``, ``bpemodel`` a name or null); else a :class:`ModelDirError` naming ``source`` and the key."""
    if not isinstance(meta, dict):
        raise ModelDirError(f"{source}: not a JSON object")
    for key in META_KEYS:
        if key not in meta:
            raise ModelDirError(f"{source}: no {key!r} key")
    for key in POSITIVE_KEYS:
        if not isinstance(meta[key], int) or isinstance(meta[key], bool) or meta[key] <= 0:
            raise ModelDirError(f"{source}: {key!r} must be a positive integer, got {meta[key]!r}")
    bpemodel = meta.get("bpemodel")
    if bpemodel is not None and not isinstance(bpemodel, str):
        raise ModelDirError(f"{source}: 'bpemodel' must be a file name or null, got {bpemodel!r}")
    return meta


def read_meta(onnx_dir: PathLike) -> Dict[str, Any]:
    """``model.json`` of an export dir, with its keys checked (:func:`check_meta`); a file that is missing,
    not JSON or lacks a key is a :class:`ModelDirError` naming it."""
    path = meta_file(onnx_dir)
    if not path.is_file():
        raise ModelDirError(f"{onnx_dir}: no {META_NAME}; is it an export_onnx directory?")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(f"{path}: not valid JSON: {e}") from e
    return check_meta(meta, path)


def write_meta(onnx_dir: PathLike, meta: Dict[str, Any]) -> Path:
    """Write ``model.json`` (checked, atomically, indented, keys in the given order); returns its path."""
    path = meta_file(onnx_dir)
    check_meta(meta, path)
    with atomic_write(path) as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    return path
