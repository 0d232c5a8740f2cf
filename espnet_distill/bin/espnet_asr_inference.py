"""ESPnet's own decoder (``espnet2.bin.asr_inference``) on a model fine-tuned here.

The same options as ESPnet's script.  This entry point registers the student
components in ESPnet's ASR task first (``import espnet_distill``) and has
ESPnet's model loading go through this project's safe loader, so a model file
that would unpickle code is refused instead of run.  Before ESPnet starts, a
fine-tuning's ``config.yaml`` and model file are checked as every command of
this project checks them (:func:`espnet_distill.asr.build.load_ctc_model`): a config without
a token list or with an unknown key, a model file that is refused, truncated,
does not fit the config or has another number of CTC outputs than the token
list is one line naming the file (and the key), exit status 1.  An LM given
with ``--lm_train_config`` / ``--lm_file`` (this project's ``lm_train``, i.e.
ESPnet's LM task) is checked too: its token list must be the ASR model's (else
an error naming both files), and its model file is read by the safe loader.

    python -m espnet_distill.bin.espnet_asr_inference --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.cer_ctc.ave.pth --ctc_weight 1.0 --lm_weight 0 --beam_size 10 \\
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --output_dir exp/asr_x/espnet_decode
    python -m espnet_distill.bin.espnet_asr_inference --asr_train_config exp/asr_x/config.yaml \
        --asr_model_file exp/asr_x/valid.cer_ctc.ave.pth --lm_train_config exp/lm_char/config.yaml \
        --lm_file exp/lm_char/valid.loss.ave.pth --ctc_weight 1.0 --lm_weight 0.5 --beam_size 10 \
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --output_dir exp/asr_x/espnet_decode_lm
"""

import argparse
from pathlib import Path
from typing import List, Optional

import espnet_distill  # noqa: F401  (registers the components in ESPnet's ASR task)
from espnet_distill.espnet_interop import MODEL_NAME
from espnet_distill.utils.checkpoint import espnet_loads_safe
from espnet_distill.utils.cli import check_output_dir, run
from espnet_distill.utils.log import setup_logging


def check_model_files(args: argparse.Namespace) -> None:
    """Build the model of ``--asr_train_config`` with ``--asr_model_file``'s weights as this project does, when
    the config is a fine-tuning's of this project (ESPnet's own models are left to ESPnet)."""
    from espnet_distill.asr.build import load_ctc_model
    from espnet_distill.utils.checkpoint import read_training_config

    if args.model_tag is not None or (args.asr_train_config is None and args.asr_model_file is None):
        return
    config_file = Path(args.asr_train_config or Path(args.asr_model_file).parent / "config.yaml")
    config = read_training_config(config_file)
    if config.get("model", MODEL_NAME) != MODEL_NAME:
        return
    load_ctc_model(config, config_file, args.asr_model_file)
    if args.lm_train_config is not None or args.lm_file is not None:
        check_lm_files(args, config, config_file)


def check_lm_files(args: argparse.Namespace, asr_config: dict, asr_config_file: Path) -> None:
    """The LM's token list against the ASR model's (naming both files), its model file read safely."""
    from espnet_distill.inference.lm import check_token_lists, lm_token_list
    from espnet_distill.text.tokens import read_token_list
    from espnet_distill.utils.checkpoint import trained_state

    lm_config = Path(args.lm_train_config or Path(args.lm_file).parent / "config.yaml")
    asr_tokens = asr_config["token_list"]
    asr_tokens = read_token_list(asr_tokens) if isinstance(asr_tokens, str) else asr_tokens
    check_token_lists(lm_config, lm_token_list(lm_config), asr_config_file, asr_tokens)
    if args.lm_file is not None:
        trained_state(args.lm_file)


def main(argv: Optional[List[str]] = None) -> None:
    from espnet2.bin import asr_inference

    args = asr_inference.get_parser().parse_args(argv)
    setup_logging(level=args.log_level)  # ESPnet's own logging.basicConfig then keeps it
    check_output_dir(Path(args.output_dir))
    check_model_files(args)
    with espnet_loads_safe():
        asr_inference.main(argv)


if __name__ == "__main__":
    run(main)
