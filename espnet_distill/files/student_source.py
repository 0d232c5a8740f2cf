"""``student_source.json``: a fine-tuning's record of what it started from.

Written by the ASR task when a fine-tuning starts from a student (``--init_student``), from the
student's own files (not from any directory name); read by RESULTS.md's study
(:mod:`espnet_distill.report.study`) to group and pair models by what they are:

- ``kind``: ``teacher``, ``distilled`` or ``scratch`` (the structure with random weights);
- ``frontend`` and ``structure`` (``num_layers``, ``output_size``, ``ffn_dim``);
- ``loss`` (``reg`` or ``reg + KL``) and ``distill_config``, for distilled students;
- ``init_student``, ``init_student_weights``: what the fine-tuning was given.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from espnet_distill.files.student_dir import read_description
from espnet_distill.utils.config import ConfigError
from espnet_distill.utils.fileio import atomic_write

STUDENT_SOURCE = "student_source.json"
KINDS = ("teacher", "distilled", "scratch")


def student_source(
    student_dir: Path, init_weights: bool, description: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """What a fine-tuning starts from, read from the student's files (not from any directory name).

    ``kind``: ``teacher`` (the teacher exported as a student), ``distilled`` or ``scratch`` (the
    structure with random weights); ``frontend`` and ``structure`` (layers, width, FFN) from its
    ``student.yaml``; ``loss`` (``reg`` or ``reg + KL``, distilled students only) and the distillation
    config from the distillation run's ``config.yaml``.
    """
    if description is None:
        description = read_description(student_dir)
    encoder_conf = description.get("encoder_conf", {})
    if not init_weights:
        kind = "scratch"  # the structure with random weights, whatever it came from
    elif description.get("source") == "teacher":
        kind = "teacher"
    else:
        kind = "distilled"
    source: Dict[str, Any] = {
        "init_student": str(student_dir),
        "init_student_weights": init_weights,
        "kind": kind,
        "frontend": description.get("frontend"),
        "structure": {k: encoder_conf.get(k) for k in ("num_layers", "output_size", "ffn_dim")},
        "loss": None,
        "distill_config": None,
    }
    distill_config = student_dir / "config.yaml"
    if kind == "distilled" and distill_config.is_file():
        config = yaml.safe_load(distill_config.read_text(encoding="utf-8")) or {}
        weight = float((config.get("model_conf") or {}).get("discriminative_weight") or 0.0)
        source["loss"] = "reg + KL" if weight > 0 else "reg"
        source["distill_config"] = config.get("config")
    return source


def write_student_source(
    output_dir: Path, student_dir: Path, init_weights: bool, description: Optional[Dict[str, Any]] = None
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(output_dir / STUDENT_SOURCE) as f:
        json.dump(student_source(student_dir, init_weights, description), f, indent=2)


def read_student_source(exp_dir: Path) -> Optional[Dict[str, Any]]:
    """The ``student_source.json`` of a fine-tuning exp dir (None when it started from no student); a
    :class:`ConfigError` naming the file when it is not such a record."""
    path = Path(exp_dir) / STUDENT_SOURCE
    if not path.is_file():
        return None
    try:
        source = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it: {e}") from e
    if not isinstance(source, dict) or source.get("kind") not in KINDS:
        raise ConfigError(f"{path}: not a fine-tuning's student source (its kind must be one of {', '.join(KINDS)})")
    return source
