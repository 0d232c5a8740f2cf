"""A student directory: the structure (``student.yaml``) and the weights (``student.pth``) of a student.

Written by distillation (:func:`espnet_distill.distill.export.export_student`) and by the teacher's
export as a student; read by fine-tuning (``--init_student``), the Hugging Face export, the benchmarks
and the recipe (``recipe/query``).  ``student.yaml`` holds:

- ``frontend``, ``frontend_conf``, ``encoder``, ``encoder_conf``: the structure, as the YAML of both tasks
  names it (:data:`STRUCTURE_KEYS`; what builds the modules);
- ``params``: parameter counts of the front-end, the encoder and both;
- ``source``: the checkpoint the weights came from (``teacher`` for the exported teacher);
- ``teacher``, ``teacher_conf``: the teacher it was distilled from (or is).
"""

from pathlib import Path
from typing import Any, Dict, Union

import yaml

from espnet_distill.utils.config import ConfigError, read_yaml_file
from espnet_distill.utils.fileio import atomic_write

STUDENT_YAML = "student.yaml"
STUDENT_WEIGHTS = "student.pth"
STRUCTURE_KEYS = ("frontend", "frontend_conf", "encoder", "encoder_conf")

PathLike = Union[str, Path]


def description_file(student_dir: PathLike) -> Path:
    return Path(student_dir) / STUDENT_YAML


def weights_file(student_dir: PathLike) -> Path:
    return Path(student_dir) / STUDENT_WEIGHTS


def is_student_dir(path: PathLike) -> bool:
    """Whether ``path`` holds both files of a student."""
    return description_file(path).is_file() and weights_file(path).is_file()


def check_description(description: Any, source: PathLike) -> Dict[str, Any]:
    """``description`` if it is a student structure (:data:`STRUCTURE_KEYS`, the confs mappings); else a
    :class:`ConfigError` naming ``source`` and the key."""
    if not isinstance(description, dict):
        raise ConfigError(f"{source}: not a student description (a YAML mapping)")
    missing = [key for key in STRUCTURE_KEYS if key not in description]
    if missing:
        raise ConfigError(f"{source}: a student description needs {', '.join(missing)}")
    for key in ("frontend_conf", "encoder_conf"):
        if not isinstance(description[key], dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {description[key]!r}")
    return description


def read_description(student_dir: PathLike) -> Dict[str, Any]:
    """The checked ``student.yaml`` of ``student_dir``; a :class:`ConfigError` naming the file if it is
    missing, unreadable or not a student structure."""
    path = description_file(student_dir)
    if not path.is_file():
        raise ConfigError(f"{student_dir}: no {STUDENT_YAML} (not a distillation exp dir or an exported teacher)")
    return check_description(read_yaml_file(path), path)


def structure(description: Dict[str, Any]) -> Dict[str, Any]:
    """Only the structure keys of a description (what builds the modules, what makes two students the same)."""
    return {key: description.get(key) for key in STRUCTURE_KEYS}


def write_description(student_dir: PathLike, description: Dict[str, Any]) -> Path:
    """Write ``student.yaml`` (checked, atomically, keys in the given order); returns its path."""
    path = description_file(student_dir)
    check_description(description, path)
    with atomic_write(path) as f:
        yaml.safe_dump(description, f, sort_keys=False)
    return path
