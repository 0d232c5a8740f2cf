"""Kaldi data dirs of LibriSpeech and Libri-Light's limited-resource sets, the audio left in place.

Data dirs: ``train_960`` (train-clean-100 + train-clean-360 + train-other-500),
``train_clean_100``, ``dev_clean``, ``dev_other``, ``test_clean``, ``test_other``
from ``--librispeech``; ``train_10h``, ``train_1h`` and ``train_10min`` from
``--librilight`` (``librispeech_finetuning``).  ``--data_dirs`` picks some.

Example:
    python -m espnet_distill.recipe.librispeech_data --librispeech /corpora --librilight /corpora \\
        --data_root data --data_dirs train_960 dev_clean test_clean train_10h
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.librispeech import CorpusError, prepare
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--librispeech", default="", help="the directory holding LibriSpeech/ (or LibriSpeech itself)")
    parser.add_argument(
        "--librilight", default="", help="the directory holding librispeech_finetuning/ (or that itself)"
    )
    parser.add_argument("--data_root", type=Path, default=Path("data"))
    parser.add_argument("--data_dirs", nargs="*", default=[], help="data dirs to write (default: all)")
    args = parser.parse_args(argv)
    setup_logging()
    if not args.librispeech and not args.librilight:
        parser.error("give --librispeech and/or --librilight")
    try:
        counts = prepare(args.data_root, args.librispeech, args.librilight, args.data_dirs)
    except CorpusError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    for name, count in counts.items():
        logger.info("%s: %d utterances", args.data_root / name, count)


if __name__ == "__main__":
    run(main)
