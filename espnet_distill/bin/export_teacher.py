"""Export the teacher's CNN and Transformer in the student format, for fine-tuning it as a reference.

Example:
    python -m espnet_distill.bin.export_teacher --teacher_yaml exp/teacher/teacher.yaml --out_dir exp/teacher_student
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.distill.export import export_teacher_as_student
from espnet_distill.teacher import CheckpointError
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_yaml", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        export_teacher_as_student(args.teacher_yaml, args.out_dir)
    except (CheckpointError, ValueError, KeyError, OSError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
