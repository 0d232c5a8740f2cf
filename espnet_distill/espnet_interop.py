"""ESPnet's own ASR tools on the models fine-tuned here.

``import espnet_distill`` makes ESPnet's ASR task (``espnet2.tasks.asr``) know
this project's components, so that ESPnet's ``Speech2Text``,
``espnet2.bin.asr_inference`` and ``ASRTask.build_model_from_file`` load a
fine-tuned ``config.yaml`` as they load their own:

- front-ends ``wav_cnn`` and ``fbank`` (no ESPnet front-end has those names);
- encoder ``student_transformer`` (this project's ``transformer``: ESPnet's
  ``transformer`` is another encoder, so a fine-tuning's ``config.yaml`` records
  the unambiguous name);
- model ``ctc_student`` (:class:`~espnet_distill.asr.model.CTCASRModel`).

The registration happens when ``espnet2.tasks.asr`` is imported (at once if it
already is), so that ``import espnet_distill`` itself stays light.

The same import hook keeps ESPnet's import-time prints off standard output
(``QUIET_MODULES``: "Failed to import Flash Attention, using ESPnet default"
on every machine without ``flash_attn``): they go to the log at debug level.
"""

import contextlib
import importlib.abc
import importlib.machinery
import io
import logging
import sys
import threading
from typing import Any, Dict, Optional

ESPNET_ASR_MODULE = "espnet2.tasks.asr"
# ESPnet modules that print while being imported.
QUIET_MODULES = ("espnet.nets.pytorch_backend.transformer.attention",)
ENCODER_NAME = "student_transformer"
MODEL_NAME = "ctc_student"
# Keys ESPnet's ASRTask.build_model reads that this project's task has no option for.
ESPNET_DEFAULTS: Dict[str, Any] = dict(
    input_size=None,
    normalize=None,
    normalize_conf={},
    preencoder=None,
    preencoder_conf={},
    postencoder=None,
    postencoder_conf={},
    decoder=None,
    decoder_conf={},
    init=None,
    model=MODEL_NAME,
    use_preprocessor=False,  # ESPnet's text preprocessing: this task tokenizes in its own preprocess function
)

_lock = threading.Lock()
_logger = logging.getLogger(__name__)
_registered = False


class RegistrationError(RuntimeError):
    """ESPnet already has another class under one of this project's names."""


def _add(choices: Any, name: str, cls: type) -> None:
    present = choices.classes.get(name)
    if present is not None and present is not cls:
        raise RegistrationError(
            f"ESPnet's {choices.name} choices already have {name!r} ({present.__module__}.{present.__qualname__}); "
            f"cannot register {cls.__module__}.{cls.__qualname__} under that name"
        )
    choices.classes[name] = cls


def register(asr_module: Optional[Any] = None) -> None:
    """Add the student front-ends, encoder and CTC model to ESPnet's ASR class choices (idempotent)."""
    global _registered
    with _lock:
        if _registered:
            return
        if asr_module is None:
            asr_module = importlib.import_module(ESPNET_ASR_MODULE)
        # Imported here, not at the top: `import espnet_distill` must not import ESPnet.
        from espnet_distill.asr.model import CTCASRModel
        from espnet_distill.components import FRONTENDS, TransformerStudentEncoder

        for name, cls in FRONTENDS.items():
            _add(asr_module.frontend_choices, name, cls)
        _add(asr_module.encoder_choices, ENCODER_NAME, TransformerStudentEncoder)
        _add(asr_module.model_choices, MODEL_NAME, CTCASRModel)
        _registered = True


class _RegisteringLoader(importlib.abc.Loader):
    """Runs ESPnet's module as its own loader would (its prints to standard output logged instead, for
    :data:`QUIET_MODULES`), then :func:`register` for the ASR task."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        if module.__name__ in QUIET_MODULES:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                self.inner.exec_module(module)
            for line in printed.getvalue().splitlines():
                # A module logger: logging.debug() itself would configure the root logger (basicConfig)
                # before the program does, and every INFO line of ESPnet's trainer would be lost.
                _logger.debug("%s: %s", module.__name__, line)
            return
        self.inner.exec_module(module)
        register(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self.inner, name)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``espnet2.tasks.asr`` (and :data:`QUIET_MODULES`) with the other finders and wraps its loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != ESPNET_ASR_MODULE and fullname not in QUIET_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Register now if ESPnet's ASR task is imported, else when it is (and quiet :data:`QUIET_MODULES`)."""
    if ESPNET_ASR_MODULE in sys.modules:
        register(sys.modules[ESPNET_ASR_MODULE])
    if not any(isinstance(f, _AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())


def espnet_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """A fine-tuning ``config.yaml`` (as a dict) in the form ESPnet's ``ASRTask.build_model`` reads.

    Configs written before the ESPnet names existed say ``encoder: transformer``
    and lack ESPnet's keys; the structure itself is already complete in them.
    ``init_student`` (the distillation exp dir the weights started from) is
    dropped: the model file holds the weights.
    """
    from espnet_distill.components import canonical_encoder

    out = {**ESPNET_DEFAULTS, **config}
    out["encoder"] = canonical_encoder(out.get("encoder"))
    out["init_student"] = None
    return out
