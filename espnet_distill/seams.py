"""The one seam to other packages' internals: every patch of ESPnet and every private name used.

Each function here does one job; ``docs/seams.md`` lists them with why each
exists, the version it was checked against and the test that guards it.

Private names (of torch, torchaudio, numpy, argparse) are reached only through
the accessors below (:func:`torchaudio_build_encoder`, ...).  ESPnet is patched
only by :func:`torch_function_replaced` (while a task or ESPnet's inference
runs: :func:`espnet_distill.utils.checkpoint.espnet_loads_safe` and
``espnet_saves_atomic`` plug in the safe loader and the atomic save) and the
two import hooks that
``import espnet_distill`` installs (:func:`install_component_registration`,
:func:`install_import_print_quieting`), and :func:`register_espnet_data_type` adds one data type
(stored teacher targets) to ESPnet's data sets.

Checks:

- at import of this module: when the installed torch, torchaudio or espnet
  is not the version of :data:`PINNED_VERSIONS` (``tools/requirements.txt``),
  one warning line names each and points at ``docs/seams.md``.  The pins are
  constants here, not read from ``tools/requirements.txt``, because an
  installed wheel has no ``tools/``; ``tests/test_seams.py`` keeps them equal.
- on the first use of a package's private names (:func:`require_private_names`):
  each one of that package is looked up, and a missing one is a
  :class:`SeamError` (an ``ImportError``) naming it and the installed version.
  Not at import: ``import espnet_distill`` must stay light (no torch).
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import io
import logging
import platform
import sys
import threading
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

logger = logging.getLogger(__name__)
SEAMS_DOC = "docs/seams.md"

# ---------------------------------------------------------------------------------------------------------
# Versions

# tools/requirements.txt's pins of the packages whose internals this module touches.
PINNED_VERSIONS: Dict[str, str] = {"torch": "2.11.0", "torchaudio": "2.11.0", "espnet": "202511"}
# What each private name was checked against: the pins, plus numpy as they resolve it (not pinned itself)
# and the Python of setup.py's python_requires.
CHECKED_VERSIONS: Dict[str, str] = {**PINNED_VERSIONS, "numpy": "2.4.6", "python": "3.11"}


class SeamError(ImportError):
    """A private name this project uses is missing from the installed version of its package."""


def installed_version(distribution: str) -> Optional[str]:
    """The installed version of ``distribution`` ("python": the interpreter's); None when not installed."""
    if distribution == "python":
        return platform.python_version()
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> str:
    """The version without its local part: "2.11.0+cu130" -> "2.11.0"."""
    return version.split("+", 1)[0]


def version_differences() -> Dict[str, Tuple[str, str]]:
    """``{package: (installed, pinned)}`` for each of :data:`PINNED_VERSIONS` installed at another version."""
    differ = {}
    for name, pinned in PINNED_VERSIONS.items():
        installed = installed_version(name)
        if installed is not None and _release(installed) != pinned:
            differ[name] = (installed, pinned)
    return differ


def warn_if_versions_differ() -> Optional[str]:
    """Log one warning line when :func:`version_differences` finds any; return it (None: all as pinned)."""
    differ = version_differences()
    if not differ:
        return None
    packages = ", ".join(f"{name} {installed} (pinned {pinned})" for name, (installed, pinned) in differ.items())
    message = (
        f"espnet-distill: installed {packages} differ from tools/requirements.txt; "
        f"the seams listed in {SEAMS_DOC} may need checking"
    )
    # A module logger: an import must not configure logging (no handler yet: Python prints it to stderr).
    logger.warning("%s", message)
    return message


# ---------------------------------------------------------------------------------------------------------
# Private names


@dataclass(frozen=True)
class PrivateName:
    """A private name of another package, the package whose version it belongs to and its accessor here."""

    distribution: str
    module: str
    attribute: str  # dotted inside ``module``
    accessor: str
    # Looks it up when it is no module attribute (an instance attribute); default: module.attribute
    probe: Optional[Callable[[], Any]] = None

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.attribute}"

    def exists(self) -> bool:
        try:
            if self.probe is not None:
                self.probe()
                return True
            value: Any = importlib.import_module(self.module)
            for part in self.attribute.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError):
            return False
        return True


def _argparse_actions_probe() -> Any:
    import argparse

    return argparse.ArgumentParser(add_help=False)._actions


_W2V2 = "torchaudio.models.wav2vec2.components"
_FAIRSEQ = "torchaudio.models.wav2vec2.utils.import_fairseq"
PRIVATE_NAMES: Tuple[PrivateName, ...] = (
    PrivateName("torchaudio", _W2V2, "_get_encoder", "torchaudio_build_encoder"),
    PrivateName("torchaudio", _W2V2, "_get_feature_extractor", "torchaudio_build_feature_extractor"),
    PrivateName("torchaudio", _W2V2, "Encoder._preprocess", "wav2vec2_encoder_preprocess"),
    PrivateName("torchaudio", _W2V2, "Transformer._preprocess", "wav2vec2_transformer_preprocess"),
    PrivateName("torchaudio", _W2V2, "_get_padding_mask", "wav2vec2_padding_mask"),
    PrivateName("torchaudio", _FAIRSEQ, "_convert_state_dict", "fairseq_state_dict_to_torchaudio"),
    PrivateName("torchaudio", _FAIRSEQ, "_map_key", "fairseq_key_to_torchaudio"),
    PrivateName("numpy", "numpy._core.multiarray", "scalar", "numpy_pickle_constructors"),
    PrivateName("numpy", "numpy._core.multiarray", "_reconstruct", "numpy_pickle_constructors"),
    PrivateName("torch", "torch.nn", "Module._apply", "torch_module_apply"),
    PrivateName("python", "argparse", "ArgumentParser._actions", "argparse_actions", _argparse_actions_probe),
)
_checked: Set[str] = set()


def missing_name_message(name: PrivateName) -> str:
    """The one line a missing private name is reported with."""
    installed = installed_version(name.distribution) or "(not installed)"
    return (
        f"{name.full_name} is missing in {name.distribution} {installed}; espnet-distill uses it "
        f"({name.accessor}) as checked against {name.distribution} {CHECKED_VERSIONS[name.distribution]}: "
        f"see {SEAMS_DOC}"
    )


def check_private_names(distribution: Optional[str] = None, names: Sequence[PrivateName] = PRIVATE_NAMES) -> None:
    """Look up each private name (of ``distribution`` only, if given); :class:`SeamError` for the first missing."""
    for name in names:
        if (distribution is None or name.distribution == distribution) and not name.exists():
            raise SeamError(missing_name_message(name))


def require_private_names(distribution: str) -> None:
    """:func:`check_private_names` for ``distribution``, once per process (the accessors call it)."""
    if distribution not in _checked:
        check_private_names(distribution)
        _checked.add(distribution)


def torchaudio_build_encoder(**kwargs: Any) -> Any:
    """torchaudio's wav2vec 2.0 ``Encoder`` (feature projection and Transformer) from ``_get_encoder``'s
    arguments (``in_features``, ``embed_dim``, ``num_layers``, ``num_heads``, ...): the student encoder's
    layers are the teacher's kind."""
    require_private_names("torchaudio")
    from torchaudio.models.wav2vec2 import components

    return components._get_encoder(**kwargs)


def torchaudio_build_feature_extractor(mode: str, shapes: List[Tuple[int, int, int]], bias: bool) -> Any:
    """torchaudio's wav2vec 2.0 CNN ``FeatureExtractor`` from ``_get_feature_extractor``'s arguments:
    ``mode`` ("group_norm" or "layer_norm"), ``(channels, kernel, stride)`` per layer, conv ``bias``."""
    require_private_names("torchaudio")
    from torchaudio.models.wav2vec2 import components

    return components._get_feature_extractor(mode, shapes, bias)


def wav2vec2_encoder_preprocess(encoder: Any, features: Any, lengths: Any) -> Tuple[Any, Any]:
    """torchaudio's ``Encoder._preprocess``: the feature projection of CNN ``features``, padded frames
    zeroed, and the additive attention mask ``(batch, 1, frames, frames)`` (None without ``lengths``)."""
    require_private_names("torchaudio")
    return encoder._preprocess(features, lengths)


def wav2vec2_transformer_preprocess(transformer: Any, x: Any) -> Any:
    """torchaudio's ``Transformer._preprocess``: adds the convolutional positional embedding, then the
    layer norm (post-LN models) and dropout: the input of the first layer (a teacher's hidden state 0)."""
    require_private_names("torchaudio")
    return transformer._preprocess(x)


def wav2vec2_padding_mask(features: Any, lengths: Any) -> Any:
    """torchaudio's ``_get_padding_mask``: True at the padded frames of ``features`` ``(batch, frames, dim)``."""
    require_private_names("torchaudio")
    from torchaudio.models.wav2vec2 import components

    return components._get_padding_mask(features, lengths)


def fairseq_state_dict_to_torchaudio(state: Dict[str, Any]) -> Dict[str, Any]:
    """torchaudio's ``_convert_state_dict``: a fairseq wav2vec 2.0 / HuBERT state dict under torchaudio's keys
    (keys torchaudio has no place for, such as ``final_proj``, dropped)."""
    require_private_names("torchaudio")
    from torchaudio.models.wav2vec2.utils import import_fairseq

    return import_fairseq._convert_state_dict(state)


def fairseq_key_to_torchaudio(key: str) -> Optional[str]:
    """torchaudio's ``_map_key``: one fairseq key's torchaudio name; None for a key torchaudio drops,
    ``ValueError`` for one it does not know."""
    require_private_names("torchaudio")
    from torchaudio.models.wav2vec2.utils import import_fairseq

    return import_fairseq._map_key(key)


def numpy_pickle_constructors() -> List[Callable]:
    """numpy's ``_core.multiarray.scalar`` and ``_reconstruct``: what a pickled numpy scalar or array is
    rebuilt with (from a dtype, a shape and raw bytes), for the safe loader's allow-list."""
    require_private_names("numpy")
    import numpy as np

    return [np._core.multiarray.scalar, np._core.multiarray._reconstruct]


def torch_module_apply(module: Any, fn: Callable, recurse: bool = True) -> Any:
    """torch's ``Module._apply``: ``fn`` on every parameter and buffer of ``module`` (what ``.to()``,
    ``.half()``, ... do), for a module held outside its parent's submodules (the distillation teacher)."""
    require_private_names("torch")
    return module._apply(fn, recurse)


def argparse_actions(parser: Any) -> List[Any]:
    """argparse's ``ArgumentParser._actions``: every option of ``parser`` (argparse has no public list)."""
    require_private_names("python")
    return parser._actions


# ---------------------------------------------------------------------------------------------------------
# ESPnet patch: its own checkpoint loads through the safe loader, its saves atomic (while a task runs).
# The replacements are the training files' owner's (utils.checkpoint: espnet_loads_safe, espnet_saves_atomic).

# The ESPnet modules on the training and inference paths that call torch.load themselves.
GUARDED_MODULES = (
    "espnet2.train.trainer",  # Trainer.resume (also overridden by SafeTrainer)
    "espnet2.main_funcs.average_nbest_models",  # n-best averaging of <N>epoch.pth
    "espnet2.torch_utils.load_pretrained_model",  # --init_param
    "espnet2.tasks.abs_task",  # build_model_from_file
)
# The ESPnet modules that save training files: checkpoint.pth, <N>epoch.pth, the n-best averages.
ATOMIC_SAVE_MODULES = ("espnet2.train.trainer", "espnet2.main_funcs.average_nbest_models")


class TorchWithOneFunction(types.ModuleType):
    """``torch`` as one ESPnet module sees it while patched: ``inner`` (torch, or an outer patch of it)
    with the one function ``name`` replaced."""

    def __init__(self, inner: types.ModuleType, name: str, replacement: Callable) -> None:
        super().__init__("torch")
        self.inner = inner
        setattr(self, name, replacement)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def torch_function_replaced(module_names: Sequence[str], name: str, replacement: Callable) -> Iterator[None]:
    """While active, ``torch.<name>`` in each of ``module_names`` is ``replacement`` (their ``torch`` swapped)."""
    modules = [importlib.import_module(module_name) for module_name in module_names]
    saved = [module.torch for module in modules]
    for module, original in zip(modules, saved):
        module.torch = TorchWithOneFunction(original, name, replacement)
    try:
        yield
    finally:
        for module, original in zip(modules, saved):
            module.torch = original


# ---------------------------------------------------------------------------------------------------------
# ESPnet patches at import: two hooks in sys.meta_path, installed by ``import espnet_distill``

ESPNET_ASR_MODULE = "espnet2.tasks.asr"
# ESPnet modules that print while being imported ("Failed to import Flash Attention, using ESPnet default"
# on every machine without flash_attn).
QUIET_MODULES = ("espnet.nets.pytorch_backend.transformer.attention",)
# A hook's job: gets the module and a function that executes it (as its own loader would).
ImportJob = Callable[[types.ModuleType, Callable[[], None]], None]

_register_lock = threading.Lock()
_registered = False
# What register_components adds: {choices name in espnet2.tasks.asr: {name: class}}, given at install.
_choices_provider: Optional[Callable[[], Dict[str, Dict[str, type]]]] = None


class RegistrationError(RuntimeError):
    """ESPnet already has another class under one of this project's names."""


def _add_choice(choices: Any, name: str, cls: type) -> None:
    present = choices.classes.get(name)
    if present is not None and present is not cls:
        raise RegistrationError(
            f"ESPnet's {choices.name} choices already have {name!r} ({present.__module__}.{present.__qualname__}); "
            f"cannot register {cls.__module__}.{cls.__qualname__} under that name"
        )
    choices.classes[name] = cls


def register_components(asr_module: Optional[Any] = None) -> None:
    """Add this project's classes to ESPnet's ASR class choices (idempotent).

    ESPnet's ``Speech2Text`` and ``ASRTask.build_model_from_file`` build models
    from ``espnet2.tasks.asr``'s choices.  What is added is what the provider given
    to :func:`install_component_registration` returns
    (:func:`espnet_distill.components.espnet_asr_choices`: ``wav_cnn`` and ``fbank``
    front-ends, the ``student_transformer`` encoder, the ``ctc_student`` model).  A
    name ESPnet already gives another class is a :class:`RegistrationError`.
    """
    global _registered
    with _register_lock:
        if _registered or _choices_provider is None:
            return
        if asr_module is None:
            asr_module = importlib.import_module(ESPNET_ASR_MODULE)
        for choices_name, classes in _choices_provider().items():
            for name, cls in classes.items():
                _add_choice(getattr(asr_module, choices_name), name, cls)
        _registered = True


def register_espnet_data_type(name: str, reader: Callable[[str], Any], help_text: str) -> None:
    """Add a data type to ESPnet's data sets (``<path>,<data name>,<name>`` in ``*_data_path_and_name_and_type``):
    ``reader(path)`` is a mapping from utterance id to array.  Idempotent; a name ESPnet already gives another
    reader is a :class:`RegistrationError`.  ESPnet matches a type by ``re.match(<registered name>, <type>)``
    in order, so the name must not start with an earlier one (none of ESPnet's types prefixes another's here)."""
    dataset = importlib.import_module("espnet2.train.dataset")  # imported when a task needs the type

    present = dataset.DATA_TYPES.get(name)
    if present is not None and present["func"] is not reader:
        raise RegistrationError(f"ESPnet's data types already have {name!r}; cannot register {reader!r} under it")
    shadowing = [key for key in dataset.DATA_TYPES if key != name and name.startswith(key)]
    if shadowing:
        raise RegistrationError(f"ESPnet's data type {shadowing[0]!r} would match {name!r} first")
    dataset.DATA_TYPES[name] = dict(func=reader, kwargs=[], help=help_text)


def register_components_after_import(module: types.ModuleType, execute: Callable[[], None]) -> None:
    """Import job for ``espnet2.tasks.asr``: execute it, then :func:`register_components` into it."""
    execute()
    register_components(module)


def log_import_prints(module: types.ModuleType, execute: Callable[[], None]) -> None:
    """Import job for :data:`QUIET_MODULES`: execute the module with what it prints on standard output
    logged at debug level instead (standard output carries a tool's results, such as transcripts)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        execute()
    for line in printed.getvalue().splitlines():
        # A module logger: logger.debug() itself would configure the root logger (basicConfig)
        # before the program does, and every INFO line of ESPnet's trainer would be lost.
        logger.debug("%s: %s", module.__name__, line)


class _JobLoader(importlib.abc.Loader):
    """A module's own loader, with its execution run through an :data:`ImportJob`."""

    def __init__(self, inner: importlib.abc.Loader, job: ImportJob) -> None:
        self.inner = inner
        self.job = job

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.job(module, lambda: self.inner.exec_module(module))

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self.inner, name)


class ImportHook(importlib.abc.MetaPathFinder):
    """Finds ``module_names`` with the other finders and runs ``job`` around their execution."""

    def __init__(self, module_names: Sequence[str], job: ImportJob) -> None:
        self.module_names = tuple(module_names)
        self.job = job

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in self.module_names:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, ImportHook) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _JobLoader(spec.loader, self.job)
                return spec
        return None


def _install_hook(module_names: Sequence[str], job: ImportJob) -> None:
    if not any(isinstance(f, ImportHook) and f.job is job for f in sys.meta_path):
        sys.meta_path.insert(0, ImportHook(module_names, job))


def install_component_registration(choices: Callable[[], Dict[str, Dict[str, type]]]) -> None:
    """:func:`register_components` of ``choices()`` now if ESPnet's ASR task is imported, else as soon as it
    is.  ``choices`` is called then, not now (``import espnet_distill`` must not import torch or ESPnet)."""
    global _choices_provider
    _choices_provider = choices
    if ESPNET_ASR_MODULE in sys.modules:
        register_components(sys.modules[ESPNET_ASR_MODULE])
    _install_hook((ESPNET_ASR_MODULE,), register_components_after_import)


def install_import_print_quieting() -> None:
    """:func:`log_import_prints` for :data:`QUIET_MODULES` imported from now on."""
    _install_hook(QUIET_MODULES, log_import_prints)


warn_if_versions_differ()
