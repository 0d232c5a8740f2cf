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
"""

import os
import sys
from pathlib import Path
from typing import List, Optional

from espnet_distill.distill.export import export_student
from espnet_distill.tasks.distill import DistillTask


def main(argv: Optional[List[str]] = None) -> None:
    args = DistillTask.get_parser().parse_args(argv)
    DistillTask.main(args=args)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 and not args.dry_run and not args.collect_stats:
        export_student(Path(args.output_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
