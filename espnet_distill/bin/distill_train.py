"""Distill a HuBERT-class teacher into a student (ESPnet's task and trainer).

After training, the output dir also holds ``student.pth`` (front-end and
encoder weights, from ESPnet's averaged n-best checkpoint), ``student.yaml``
(their resolved configuration, what fine-tuning loads) and
``distill_summary.json`` (parameters, final dev losses, throughput).

Example:
    python -m espnet_distill.bin.distill_train --config conf/distill/shallow_wide_reg.yaml \\
        --teacher torchaudio --teacher_conf path=exp/hubert_pretrain/teacher.pt \\
        --train_data_path_and_name_and_type data/train/wav.scp,speech,sound \\
        --train_shape_file exp/distill_stats/train/speech_shape \\
        --valid_data_path_and_name_and_type data/dev/wav.scp,speech,sound \\
        --valid_shape_file exp/distill_stats/dev/speech_shape --output_dir exp/distill_shallow_wide_reg

``--teacher_yaml exp/teacher/teacher.yaml`` (what the teacher stage writes) can
replace ``--teacher`` and ``--teacher_conf``.  ``speech_shape`` files come from
``python -m espnet_distill.recipe.speech_shape``.
"""

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_distill.distill.export import export_student
from espnet_distill.files.teacher_spec import read_spec
from espnet_distill.tasks.distill import DistillTask
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import ConfigError

logger = logging.getLogger(__name__)


def teacher_yaml_args(argv: List[str]) -> List[str]:
    """Replace ``--teacher_yaml <file>`` (written by the teacher stage) with ``--teacher``/``--teacher_conf``.

    They are placed first, so an explicit ``--teacher``/``--teacher_conf`` later on the command line wins.
    """
    if "--teacher_yaml" not in argv:
        return list(argv)
    index = argv.index("--teacher_yaml")
    if index + 1 >= len(argv):
        raise SystemExit("--teacher_yaml needs a file")
    path = Path(argv[index + 1])
    try:
        spec = read_spec(path)
    except ConfigError as e:
        raise SystemExit(f"--teacher_yaml {path}: cannot read teacher and teacher_conf: {e}") from e
    rest = argv[:index] + argv[index + 2 :]
    conf = yaml.safe_dump(spec["teacher_conf"], default_flow_style=True).strip()
    return ["--teacher", spec["teacher"], "--teacher_conf", conf, *rest]


def main(argv: Optional[List[str]] = None) -> None:
    # ESPnet 202511 calls the deprecated torch.cuda.amp.autocast every step; keep the logs readable
    warnings.filterwarnings("ignore", category=FutureWarning, module="espnet2.train.trainer")
    argv = teacher_yaml_args(sys.argv[1:] if argv is None else argv)
    args = DistillTask.get_parser().parse_args(argv)
    try:
        DistillTask.main(args=args)
    except CheckpointError as e:  # a refused, damaged or mismatched file: the message names it
        logger.error("%s", e)
        raise SystemExit(1) from None
    # torchrun sets RANK; espnet2.bin.launch passes --dist_rank (the node's rank with --ngpu > 1)
    rank = int(os.environ.get("RANK", args.dist_rank or 0))
    if rank == 0 and not args.dry_run and not args.collect_stats:
        export_student(Path(args.output_dir))


if __name__ == "__main__":
    run(main)
