"""ESPnet's own decoder (``espnet2.bin.asr_inference``) on a model fine-tuned here.

The same options as ESPnet's script.  This entry point registers the student
components in ESPnet's ASR task first (``import espnet_distill``) and has
ESPnet's model loading go through this project's safe loader, so a model file
that would unpickle code is refused instead of run.

    python -m espnet_distill.bin.espnet_asr_inference --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.cer_ctc.ave.pth --ctc_weight 1.0 --lm_weight 0 --beam_size 10 \\
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --output_dir exp/asr_x/espnet_decode
"""

from typing import List, Optional

import espnet_distill  # noqa: F401  (registers the components in ESPnet's ASR task)
from espnet_distill.tasks.trainer import espnet_loads_checked
from espnet_distill.utils.cli import run


def main(argv: Optional[List[str]] = None) -> None:
    from espnet2.bin import asr_inference

    with espnet_loads_checked():
        asr_inference.main(argv)


if __name__ == "__main__":
    run(main)
