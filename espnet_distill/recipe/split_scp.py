"""Split an scp file into N contiguous parts, optionally keeping speakers whole.

The parts are the listed outputs, or with ``--nj N`` the N files named by one
output pattern with ``JOB`` in it (Kaldi's ``JOB=1:N`` convention).

Example:
    python -m espnet_distill.recipe.split_scp data/train/wav.scp split/wav.1.scp split/wav.2.scp
    python -m espnet_distill.recipe.split_scp --nj 4 data/train/wav.scp split4/wav.JOB.scp
    python -m espnet_distill.recipe.split_scp --utt2spk data/train/utt2spk data/train/wav.scp a.scp b.scp
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.split import split_scp
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utt2spk", type=Path, default=None, help="keep speakers in one part")
    parser.add_argument("scp", type=Path)
    parser.add_argument("outputs", type=str, nargs="+", help="the parts, or with --nj one pattern with JOB in it")
    parser.add_argument("--nj", type=int, default=None, help="the number of parts of an output pattern")
    args = parser.parse_args(argv)
    setup_logging()
    outputs = [Path(o) for o in args.outputs]
    if args.nj is not None:
        if len(args.outputs) != 1 or "JOB" not in args.outputs[0] or args.nj < 1:
            parser.error("--nj N takes one output pattern with JOB in it, e.g. split/wav.JOB.scp, and N >= 1")
        outputs = [Path(args.outputs[0].replace("JOB", str(n))) for n in range(1, args.nj + 1)]
        for out in outputs:
            out.parent.mkdir(parents=True, exist_ok=True)
    try:
        split_scp(args.scp, outputs, utt2spk=args.utt2spk)
    except DataDirError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
