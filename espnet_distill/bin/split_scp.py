"""Split an scp file into N contiguous parts, optionally keeping speakers whole.

Example:
    python -m espnet_distill.bin.split_scp data/train/wav.scp split/wav.1.scp split/wav.2.scp
    python -m espnet_distill.bin.split_scp --utt2spk data/train/utt2spk data/train/wav.scp a.scp b.scp
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.split import split_scp
from espnet_distill.utils.log import setup_logging


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utt2spk", type=Path, default=None, help="keep speakers in one part")
    parser.add_argument("scp", type=Path)
    parser.add_argument("outputs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        split_scp(args.scp, args.outputs, utt2spk=args.utt2spk)
    except DataDirError as e:
        logging.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
