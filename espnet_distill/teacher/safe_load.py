"""Loading checkpoints without executing pickled code.

``torch.load(weights_only=True)`` only rebuilds tensors and plain containers.
Real checkpoints also pickle a few configuration objects; those on
:data:`ALLOWED_GLOBALS` are rebuilt as inert stand-ins (fairseq need not be
installed).  Anything else is refused unless the caller explicitly trusts
the file, which then loads with ``weights_only=False``.
"""

import argparse
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any, Sequence, Union

import torch

PathLike = Union[str, Path]


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe or not in the expected layout."""


class PickledConfig:
    """Inert stand-in for a configuration object pickled in a checkpoint.

    It only stores the attributes it is given; it has no behaviour to run.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["state"] = state

    def __repr__(self) -> str:
        return f"PickledConfig({self.__dict__})"


class FairseqDictionary(PickledConfig):
    """Stand-in for ``fairseq.data.dictionary.Dictionary`` (symbols, counts)."""


def _allowed_globals() -> list:
    allowed: list = [argparse.Namespace, (FairseqDictionary, "fairseq.data.dictionary.Dictionary")]
    try:  # newer fairseq checkpoints may pickle OmegaConf configs
        import typing

        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode

        allowed += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, typing.Any, dict, list]
    except ImportError:
        pass
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


def training_checkpoint_globals() -> list:
    """What ESPnet's training checkpoints pickle besides tensors and containers.

    Its reporter holds numpy scalars (rebuilt from a dtype and raw bytes) and
    ``datetime.timedelta`` values; neither runs code when rebuilt.
    """
    import datetime

    import numpy as np

    dtypes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    return [np._core.multiarray.scalar, np.dtype, *dtypes, datetime.timedelta]


def load_checkpoint(path: PathLike, trust: bool = False, extra_globals: Sequence = ()) -> Any:
    """Load ``path`` on CPU without running pickled code (unless ``trust``).

    Raises :class:`CheckpointError` naming the file for a missing, truncated
    or corrupt file, and for a pickled object outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if trust:
        logging.warning("%s: loading with weights_only=False: pickled code in it will run", path)
    try:
        with torch.serialization.safe_globals([*ALLOWED_GLOBALS, *extra_globals]):
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        message = str(e)
        if not trust and "Weights only load failed" in message:
            reason = next(
                (line.strip() for line in message.splitlines() if "GLOBAL" in line or "Unsupported" in line),
                "an object outside the allow-list",
            )
            raise CheckpointError(
                f"{path}: refused to load: it pickles an object outside the allow-list ({reason}). "
                f"Nothing was executed. If you trust this file, set trust_checkpoint: true "
                f"(--trust_checkpoint true) to load it with weights_only=False."
            ) from e
        raise CheckpointError(f"{path}: corrupt checkpoint: {e}") from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupt?): {e}") from e
