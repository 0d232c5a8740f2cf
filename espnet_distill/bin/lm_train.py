"""Train a language model for shallow fusion: ESPnet's LM task on this project's token list.

The options are ESPnet's ``espnet2.bin.lm_train`` options (``--lm seq_rnn`` or
``--lm transformer`` with ``--lm_conf``, the trainer's options, the data as
``<kaldi text>,text,text``); the text is tokenized as the CTC models are
(:mod:`espnet_distill.tasks.lm`).  After training, the perplexity of the
n-best averaged model on the validation text is logged and written to
``<output_dir>/perplexity.json``.

Example:
    python -m espnet_distill.bin.lm_train --config conf/lm/rnn.yaml \\
        --token_list data/token_list/char/tokens.txt --token_type char \\
        --train_data_path_and_name_and_type data/lm_train.txt,text,text \\
        --train_shape_file exp/lm_stats/train/text_shape \\
        --valid_data_path_and_name_and_type data/dev/text,text,text \\
        --valid_shape_file exp/lm_stats/dev/text_shape --output_dir exp/lm_char
"""

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run

logger = logging.getLogger(__name__)
PERPLEXITY_FILE = "perplexity.json"


def write_valid_perplexity(output_dir: Path) -> Optional[dict]:
    """The perplexity of the trained LM of ``output_dir`` on its validation text, written to ``perplexity.json``."""
    from espnet_distill.data.kaldi_dir import read_kaldi_map
    from espnet_distill.inference.lm import lm_files, lm_token_list, load_lm, perplexity
    from espnet_distill.text.tokens import Tokenizer
    from espnet_distill.utils.checkpoint import read_training_config
    from espnet_distill.utils.fileio import atomic_write

    config = read_training_config(output_dir / "config.yaml")
    # ESPnet's config.yaml holds each data spec as [path, name, type]
    valid = [
        spec[0] if isinstance(spec, (list, tuple)) else spec.split(",")[0]
        for spec in config.get("valid_data_path_and_name_and_type") or []
    ]
    if not valid:
        return None
    tokens = lm_token_list(output_dir / "config.yaml")
    tokenizer = Tokenizer(tokens, config["token_type"], config.get("bpemodel"))
    _, model_file = lm_files(output_dir)
    lm = load_lm(output_dir, tokens, output_dir / "config.yaml")
    lines = list(read_kaldi_map(valid[0]).values())
    value, count = perplexity(lm, [tokenizer.encode(line) for line in lines], len(tokens))
    record = dict(valid_text=valid[0], model_file=model_file.name, sentences=len(lines), tokens=count, perplexity=value)
    with atomic_write(output_dir / PERPLEXITY_FILE) as f:
        f.write(json.dumps(record, indent=1) + "\n")
    logger.info("perplexity of %s on %s: %.3f (%d tokens with the end symbols)", model_file, valid[0], value, count)
    return record


def main(argv: Optional[List[str]] = None) -> None:
    from espnet_distill.tasks.lm import LMTask

    argv = sys.argv[1:] if argv is None else argv
    warnings.filterwarnings("ignore", category=FutureWarning, module="espnet2.train.trainer")
    try:
        LMTask.main(cmd=argv)
        args = LMTask.get_parser().parse_args(argv)
        if not args.collect_stats and not args.dry_run:
            write_valid_perplexity(Path(args.output_dir))
    except CheckpointError as e:  # a refused, damaged or mismatched file: the message names it
        logger.error("%s", e)
        raise SystemExit(1) from None


if __name__ == "__main__":
    run(main)
