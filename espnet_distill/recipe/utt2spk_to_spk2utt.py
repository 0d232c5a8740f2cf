"""Convert ``utt2spk`` to ``spk2utt``, or back with ``--reverse``.

Example:
    python -m espnet_distill.recipe.utt2spk_to_spk2utt data/train/utt2spk data/train/spk2utt
    python -m espnet_distill.recipe.utt2spk_to_spk2utt --reverse data/train/spk2utt data/train/utt2spk
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.kaldi_dir import (
    DataDirError,
    read_kaldi_map,
    read_spk2utt,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
    write_kaldi_map,
    write_spk2utt,
)
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reverse", action="store_true", help="spk2utt -> utt2spk")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if args.reverse:
            write_kaldi_map(args.output, spk2utt_to_utt2spk(read_spk2utt(args.input)))
        else:
            write_spk2utt(args.output, utt2spk_to_spk2utt(read_kaldi_map(args.input)))
    except DataDirError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
