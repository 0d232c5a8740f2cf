"""CTC fine-tuning of a distilled student or the teacher (ESPnet's task and trainer).

Example:
    python -m espnet_distill.bin.asr_train --config conf/finetune/ctc.yaml \\
        --init_student exp/distill_deep_thin_reg_kl --token_list data/token_list/char/tokens.txt --token_type char \\
        --train_data_path_and_name_and_type data/train/wav.scp,speech,sound \\
        --train_data_path_and_name_and_type data/train/text,text,text \\
        --train_shape_file exp/distill_stats/train/speech_shape \\
        --valid_data_path_and_name_and_type data/dev/wav.scp,speech,sound \\
        --valid_data_path_and_name_and_type data/dev/text,text,text \\
        --valid_shape_file exp/distill_stats/dev/speech_shape --output_dir exp/asr_deep_thin_reg_kl_train
"""

import logging
import sys
import warnings
from typing import List, Optional

from espnet_distill.tasks.asr import ASRTask
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    # ESPnet 202511 calls the deprecated torch.cuda.amp.autocast every step; keep the logs readable
    warnings.filterwarnings("ignore", category=FutureWarning, module="espnet2.train.trainer")
    try:
        ASRTask.main(cmd=sys.argv[1:] if argv is None else argv)
    except CheckpointError as e:  # a refused, damaged or mismatched file: the message names it
        logger.error("%s", e)
        raise SystemExit(1) from None


if __name__ == "__main__":
    run(main)
