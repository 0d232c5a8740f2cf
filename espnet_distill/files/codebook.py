"""A teacher codebook (``codebook.npz``): k-means codewords of one teacher layer, for the discriminative
loss of a teacher without HuBERT's codeword head.

Written by :mod:`espnet_distill.bin.teacher_codebook` (through
:func:`espnet_distill.make_teacher.codebook.save_codebook`); read by distillation, whose
``model_conf.codebook`` names it (:func:`espnet_distill.distill.codewords.load_codebook`).  An uncompressed
NumPy ``.npz`` without pickled objects, holding:

- ``codewords``: ``(num_codewords, dim)`` floats (float32 as written), unit-length rows;
- ``layer``: the teacher layer (``0..L``, an int64 scalar) they were fitted to.
"""

import zipfile
from pathlib import Path
from typing import Tuple, Union

import numpy as np

from espnet_distill.utils.config import ConfigError
from espnet_distill.utils.fileio import atomic_write

CODEWORDS_KEY = "codewords"
LAYER_KEY = "layer"

PathLike = Union[str, Path]


def check_codebook(codewords: np.ndarray, layer: np.ndarray, source: PathLike) -> Tuple[np.ndarray, int]:
    """``(codewords, layer)`` if they are a codebook (finite ``(K, dim)`` floats, K and dim above 0; a
    non-negative integer layer); else a :class:`ConfigError` naming ``source`` and the array."""
    if not isinstance(codewords, np.ndarray) or codewords.ndim != 2 or 0 in codewords.shape:
        shape = getattr(codewords, "shape", None)
        raise ConfigError(f"{source}: {CODEWORDS_KEY} must be a (num_codewords, dim) array, got shape {shape}")
    if not np.issubdtype(codewords.dtype, np.floating) or not np.isfinite(codewords).all():
        raise ConfigError(f"{source}: {CODEWORDS_KEY} must be finite floats (dtype {codewords.dtype})")
    layer = np.asarray(layer)
    if layer.ndim != 0 or not np.issubdtype(layer.dtype, np.integer) or int(layer) < 0:
        raise ConfigError(f"{source}: {LAYER_KEY} must be a non-negative integer, got {layer!r}")
    return codewords, int(layer)


def read_codebook(path: PathLike) -> Tuple[np.ndarray, int]:
    """The checked ``(codewords (K, dim) array, teacher layer)`` of the codebook file ``path``; a
    :class:`ConfigError` naming the file if it is missing, unreadable or not a codebook."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ConfigError(f"{path}: not a codebook (an .npz with {CODEWORDS_KEY} and {LAYER_KEY})")
        with data:
            missing = [key for key in (CODEWORDS_KEY, LAYER_KEY) if key not in data.files]
            if missing:
                raise ConfigError(f"{path}: a codebook needs {', '.join(missing)}")
            codewords, layer = data[CODEWORDS_KEY], data[LAYER_KEY]
    except ConfigError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path}: cannot read the codebook: {' '.join(str(e).split())}") from e
    return check_codebook(codewords, layer, path)


def write_codebook(path: PathLike, codewords: np.ndarray, layer: int) -> Path:
    """Write the codebook (checked, atomically) to ``path`` (its name as given: no ``.npz`` is added)."""
    path = Path(path)
    check_codebook(codewords, np.int64(layer), path)
    with atomic_write(path, mode="wb") as f:
        np.savez(f, **{CODEWORDS_KEY: codewords, LAYER_KEY: np.int64(layer)})
    return path
