"""``teacher.yaml``: which teacher the distillation stages load, and how.

Written by the teacher stage (:mod:`espnet_distill.recipe.check_teacher`) once the teacher has loaded and run
on one utterance; read by distillation (``distill_train --teacher_yaml``), the codebook fit
(:mod:`espnet_distill.bin.teacher_codebook`) and the teacher's export as a student
(:func:`espnet_distill.distill.export.export_teacher_as_student`).  It holds:

- ``teacher``: the loader's name (``fairseq``, ``huggingface``, ``torchaudio``, ``espnet``, ...);
- ``teacher_conf``: that loader's options (``path``, and ``trust_checkpoint``, ``sha256`` when given); an
  absent ``teacher_conf`` reads as no options.

The recipe redoes the later stages when its content changes (``recipe/stage_stamp``), so the writer keeps
its layout: keys sorted, block style.
"""

from pathlib import Path
from typing import Any, Dict, Union

import yaml

from espnet_distill.utils.config import ConfigError, read_yaml_file
from espnet_distill.utils.fileio import atomic_write

TEACHER_YAML = "teacher.yaml"
TEACHER_KEY = "teacher"
TEACHER_CONF_KEY = "teacher_conf"

PathLike = Union[str, Path]


def spec_file(out_dir: PathLike) -> Path:
    """The ``teacher.yaml`` of the teacher stage's output dir."""
    return Path(out_dir) / TEACHER_YAML


def check_spec(spec: Any, source: PathLike) -> Dict[str, Any]:
    """``{teacher, teacher_conf}`` of ``spec`` (``teacher_conf`` ``{}`` when absent) if it is a teacher spec;
    else a :class:`ConfigError` naming ``source`` and the key."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: not a teacher spec (a YAML mapping with {TEACHER_KEY} and {TEACHER_CONF_KEY})")
    if TEACHER_KEY not in spec:
        raise ConfigError(f"{source}: a teacher spec needs {TEACHER_KEY}")
    teacher = spec[TEACHER_KEY]
    if not isinstance(teacher, str) or not teacher:
        raise ConfigError(f"{source}: {TEACHER_KEY} must be a loader's name, got {teacher!r}")
    conf = spec.get(TEACHER_CONF_KEY, {})
    if not isinstance(conf, dict):
        raise ConfigError(f"{source}: {TEACHER_CONF_KEY} must be a mapping, got {conf!r}")
    return {TEACHER_KEY: teacher, TEACHER_CONF_KEY: conf}


def read_spec(path: PathLike) -> Dict[str, Any]:
    """The checked ``{teacher, teacher_conf}`` of the teacher spec file ``path`` (any name: ``--teacher_yaml``
    gives it); a :class:`ConfigError` naming the file if it is missing, unreadable or not a teacher spec."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such teacher spec (the teacher stage writes {TEACHER_YAML})")
    return check_spec(read_yaml_file(path), path)


def write_spec(out_dir: PathLike, teacher: str, teacher_conf: Dict[str, Any]) -> Path:
    """Write ``<out_dir>/teacher.yaml`` (checked, atomically); returns its path."""
    path = spec_file(out_dir)
    spec = check_spec({TEACHER_KEY: teacher, TEACHER_CONF_KEY: teacher_conf}, path)
    with atomic_write(path) as f:
        yaml.safe_dump(spec, f)
    return path
