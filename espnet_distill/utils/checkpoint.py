"""The one way this project loads a checkpoint: without executing pickled code.

``torch.load(weights_only=True)`` only rebuilds tensors and plain containers.
Real checkpoints also pickle a few configuration objects; those on
:data:`ALLOWED_GLOBALS` are rebuilt as inert stand-ins (fairseq need not be
installed).  Anything else is refused unless the caller explicitly trusts
the file, which then loads with ``weights_only=False``.

Every error is a :class:`CheckpointError` naming the file and, where one
applies, the key: a missing, truncated or corrupt file, a refused object, a
missing entry (:func:`require_entry`), a state that does not fit the module
built for it (:func:`load_state_into`).
"""

import argparse
import collections
import contextlib
import logging
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import yaml

from espnet_distill.seams import (
    ATOMIC_SAVE_MODULES,
    GUARDED_MODULES,
    numpy_pickle_constructors,
    torch_function_replaced,
)
from espnet_distill.utils.fileio import atomic_write

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
NO_TRUST_OPTION = (
    "This entry point has no option to trust a file; if you trust it, load it yourself and "
    "re-save its tensors with torch.save(state_dict)."
)


# The model file of a trained exp dir (fine-tuning or distillation), in order of preference: ESPnet's
# n-best average by dev CER (fine-tuning only), by dev loss, the best epoch by dev loss, the last epoch.
MODEL_FILE_PREFERENCE = ("valid.cer_ctc.ave.pth", "valid.loss.ave.pth", "valid.loss.best.pth", "latest.pth")


def preferred_model_file(exp_dir: PathLike) -> Path:
    """The first of :data:`MODEL_FILE_PREFERENCE` in ``exp_dir``; :class:`FileNotFoundError` naming them if none."""
    for name in MODEL_FILE_PREFERENCE:
        if (Path(exp_dir) / name).is_file():
            return Path(exp_dir) / name
    raise FileNotFoundError(f"{exp_dir}: none of {', '.join(MODEL_FILE_PREFERENCE)}; has training finished?")


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


def _numpy_globals() -> list:
    """What pickled numpy scalars and arrays need: their constructors, ``dtype`` and the dtype classes.

    Scalars and arrays are rebuilt from a dtype, a shape and raw bytes; none of these runs code.
    """
    import numpy as np

    names = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
    constructors = [*numpy_pickle_constructors(), np.ndarray, np.dtype]
    return [*constructors, *{type(np.dtype(name)) for name in names}]


def _allowed_globals() -> list:
    allowed: list = [
        argparse.Namespace,
        (FairseqDictionary, "fairseq.data.dictionary.Dictionary"),
        # OmegaConf configs and extra training state pickle these; calling them runs no code
        collections.defaultdict,
        collections.OrderedDict,
        dict,
        list,
        int,
        str,
        float,
        bool,
        *_numpy_globals(),
    ]
    try:  # newer fairseq checkpoints may pickle OmegaConf configs
        import typing

        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode, BooleanNode, EnumNode, FloatNode, IntegerNode, StringNode

        allowed += [
            DictConfig,
            ListConfig,
            ContainerMetadata,
            Metadata,
            AnyNode,
            BooleanNode,
            EnumNode,
            FloatNode,
            IntegerNode,
            StringNode,
            typing.Any,
        ]
    except ImportError:
        pass
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


def training_checkpoint_globals() -> list:
    """What ESPnet's training checkpoints pickle besides tensors, containers and numpy scalars.

    Its reporter holds ``datetime.timedelta`` values; rebuilding one runs no code.
    """
    import datetime

    return [datetime.timedelta]


def load_training_file(path: PathLike, map_location: Any = "cpu") -> Any:
    """A file written by ESPnet's trainer (checkpoint, epoch or averaged model), loaded safely."""
    return load_checkpoint(path, extra_globals=training_checkpoint_globals(), map_location=map_location)


def _unpickler_reason(message: str) -> str:
    """The line of torch's weights-only error that says what was refused."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line:
            return line
    for previous, line in zip(lines, lines[1:]):
        if previous.endswith("WeightsUnpickler error:"):
            return line
    return "an object outside the allow-list"


class StandIn:
    """Takes the place of a class of a toolkit that is not installed (fairseq's config dataclasses and enums).

    Rebuilding one only sets attributes; calling it with one plain value (how
    an enum member is rebuilt) gives that value.  Nothing of the toolkit runs.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and isinstance(args[0], (str, int, float, bool)):
            return args[0]
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


_GLOBAL_NAME = re.compile(r"GLOBAL ([A-Za-z_][\w.]*) was not an allowed global")
MAX_STAND_INS = 64


def _stand_in(name: str) -> Tuple[type, str]:
    module, _, qualname = name.rpartition(".")
    cls = type(qualname, (StandIn,), {"__module__": module, "__qualname__": qualname})
    return cls, name


def load_checkpoint(
    path: PathLike,
    trust: bool = False,
    extra_globals: Sequence = (),
    trust_hint: Optional[str] = None,
    map_location: Any = "cpu",
    stand_in_modules: Sequence[str] = (),
) -> Any:
    """Load ``path`` without running pickled code (unless ``trust``).

    Args:
        trust: load with ``weights_only=False``: pickled code in the file runs.
        extra_globals: more classes allowed besides :data:`ALLOWED_GLOBALS`.
        trust_hint: the option that sets ``trust`` at the caller's entry point,
            named in the refusal message; None: the entry point has none.
        map_location: as for ``torch.load``.
        stand_in_modules: module prefixes (e.g. ``fairseq.``) whose classes a
            file may reference: each one met is replaced by a :class:`StandIn`.

    Raises :class:`CheckpointError` naming the file for a missing, truncated
    or corrupt file, and for a pickled object outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if trust:
        logger.warning("%s: loading with weights_only=False: pickled code in it will run", path)
    stand_ins: List[Tuple[type, str]] = []
    while True:
        try:
            with torch.serialization.safe_globals([*ALLOWED_GLOBALS, *extra_globals, *stand_ins]):
                return torch.load(path, map_location=map_location, weights_only=not trust)
        except pickle.UnpicklingError as e:
            match = _GLOBAL_NAME.search(str(e))
            if (
                trust
                or match is None
                or not match.group(1).startswith(tuple(stand_in_modules))
                or len(stand_ins) >= MAX_STAND_INS
                or any(name == match.group(1) for _, name in stand_ins)
            ):
                error = e
                break
            stand_ins.append(_stand_in(match.group(1)))
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupt?): {first_line}") from None
    message = str(error)
    if not trust and "Weights only load failed" in message:
        reason = _unpickler_reason(message)
        how = (
            f"If you trust this file, set {trust_hint} to load it with weights_only=False."
            if trust_hint
            else NO_TRUST_OPTION
        )
        raise CheckpointError(
            f"{path}: refused to load: it pickles an object outside the allow-list ({reason}). "
            f"Nothing was executed. {how}"
        ) from None
    raise CheckpointError(f"{path}: corrupt checkpoint: {error}") from None


def require_entry(checkpoint: Any, key: str, path: PathLike) -> Any:
    """``checkpoint[key]``, or a :class:`CheckpointError` naming the file and the key."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: holds a {type(checkpoint).__name__}, expected a dict with {key!r}")
    if key not in checkpoint:
        raise CheckpointError(f"{path}: missing entry {key!r} (has {', '.join(map(repr, list(checkpoint)[:8]))})")
    return checkpoint[key]


def load_state_into(module: torch.nn.Module, state: Any, path: PathLike, strict: bool = True) -> None:
    """``module.load_state_dict(state)``; a mismatch is a :class:`CheckpointError` naming the file and the key.

    With ``strict``, every key of the module must be in ``state`` with the
    same shape and ``state`` may have no other key.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, expected a state dict of tensors")
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state:
            if strict:
                raise CheckpointError(f"{path}: missing key {key!r}")
            continue
        have = state[key]
        if not isinstance(have, torch.Tensor):
            raise CheckpointError(f"{path}: key {key!r} holds a {type(have).__name__}, expected a tensor")
        if tuple(have.shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(have.shape)}, expected {tuple(value.shape)}")
    unexpected = [k for k in state if k not in expected]
    if strict and unexpected:
        raise CheckpointError(f"{path}: unexpected key {unexpected[0]!r}")
    module.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=strict)


def training_config_path(config_file: Optional[Union[Path, str]], model_file: Optional[Union[Path, str]]) -> Path:
    """``config_file``, or by default the ``config.yaml`` beside ``model_file``."""
    if config_file is not None:
        return Path(config_file)
    if model_file is None:
        raise ValueError("build_model_from_file needs config_file or model_file")
    return Path(model_file).parent / "config.yaml"


def read_training_config(config_file: Path) -> Dict[str, Any]:
    """A training ``config.yaml`` as a dict; :class:`CheckpointError` naming it if unreadable or not a mapping."""
    try:
        config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"{config_file}: cannot read the training config: {' '.join(str(e).split())}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file}: not a training config (a YAML mapping)")
    return config


def trained_state(model_file: Union[Path, str]) -> Any:
    """The state dict of a trained model file, read safely (DeepSpeed's ``{"module": ...}`` unwrapped)."""
    state = load_training_file(model_file)
    if isinstance(state, dict) and "module" in state and isinstance(state["module"], dict):
        state = state["module"]  # DeepSpeed layout
    return state


# ESPnet's own loads and saves of training files while a task runs (the patch is seams.torch_function_replaced;
# docs/seams.md says why).


def safe_torch_load(f: Any, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
    """What ESPnet's ``torch.load`` becomes in :data:`GUARDED_MODULES`: the safe loader on ``f`` (a path).

    Only ``f`` and ``map_location`` (None: CPU) are used. Every other argument
    is ignored on purpose and logged at debug level: ``weights_only=False``
    (ESPnet passes it everywhere) because nothing pickled may run here, and
    ``pickle_module``, ``mmap`` and the like because the safe loader reads the
    file its own way.
    """
    if args or kwargs:
        logger.debug("%s: torch.load arguments ignored by the safe loader: %s %s", f, args, sorted(kwargs))
    return load_training_file(f, map_location="cpu" if map_location is None else map_location)


def atomic_torch_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    """What ESPnet's ``torch.save`` becomes in :data:`ATOMIC_SAVE_MODULES`: to a path, written under a
    temporary name and renamed, so that a run killed while writing ``checkpoint.pth`` or ``<N>epoch.pth``
    leaves the previous file whole; to a file object, ``torch.save`` itself."""
    if not isinstance(f, (str, os.PathLike)):
        torch.save(obj, f, *args, **kwargs)
        return
    with atomic_write(f, mode="wb") as out:
        torch.save(obj, out, *args, **kwargs)


def espnet_loads_safe() -> contextlib.AbstractContextManager:
    """While active, ESPnet's own checkpoint loads (:data:`GUARDED_MODULES`) are :func:`safe_torch_load`."""
    return torch_function_replaced(GUARDED_MODULES, "load", safe_torch_load)


def espnet_saves_atomic() -> contextlib.AbstractContextManager:
    """While active, ESPnet's training saves (:data:`ATOMIC_SAVE_MODULES`) are :func:`atomic_torch_save`."""
    return torch_function_replaced(ATOMIC_SAVE_MODULES, "save", atomic_torch_save)
