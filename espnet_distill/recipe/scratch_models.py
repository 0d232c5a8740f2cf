"""Pick the students that need a from-scratch reference: one per distinct structure.

A from-scratch model is a student's front-end and encoder, randomly initialised
(with the fine-tuning config's seed) and fine-tuned.  Students that differ only
in their distillation loss or prediction heads give the same from-scratch model,
so it is trained once, under the name of the first of them.  Prints the
distillation dirs to keep, in the order given; a dir without ``student.yaml``
(not distilled yet) is kept.

Example:
    python -m espnet_distill.recipe.scratch_models exp/distill_deep_thin_reg_kl exp/distill_deep_thin_reg
"""

import argparse
import json
from pathlib import Path
from typing import Iterable, List, Optional

from espnet_distill.files.student_dir import description_file, read_description, structure
from espnet_distill.utils.cli import run


def structure_key(student_dir: Path) -> Optional[str]:
    """The student's front-end and encoder settings as a canonical string (None without student.yaml)."""
    if not description_file(student_dir).is_file():
        return None
    return json.dumps(structure(read_description(student_dir)), sort_keys=True)


def unique_structures(student_dirs: Iterable[Path]) -> List[Path]:
    """The first dir of each structure; dirs not distilled yet are all kept."""
    seen, keep = set(), []
    for student_dir in student_dirs:
        key = structure_key(student_dir)
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        keep.append(student_dir)
    return keep


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student_dirs", nargs="+", type=Path, help="distillation dirs (with student.yaml)")
    args = parser.parse_args(argv)
    for student_dir in unique_structures(args.student_dirs):
        print(student_dir)


if __name__ == "__main__":
    run(main)
