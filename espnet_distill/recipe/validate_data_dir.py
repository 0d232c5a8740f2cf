"""Validate a Kaldi data directory; exit 1 with a message naming the problem.

Example:
    python -m espnet_distill.recipe.validate_data_dir --check_audio true data/train
    python -m espnet_distill.recipe.validate_data_dir --need_feats true --feat_dim 80 data/train
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.validate import validate_data_dir
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import str2bool
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--need_text", type=str2bool, default=True)
    parser.add_argument("--need_wav", type=str2bool, default=True)
    parser.add_argument("--need_feats", type=str2bool, default=False)
    parser.add_argument("--check_audio", type=str2bool, default=False, help="read audio headers and run pipe entries")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--feat_dim", type=int, default=None, help="load and check every matrix")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        validate_data_dir(
            args.data_dir,
            need_text=args.need_text,
            need_wav=args.need_wav,
            need_feats=args.need_feats,
            check_audio=args.check_audio,
            sample_rate=args.sample_rate,
            feat_dim=args.feat_dim,
        )
    except (DataDirError, AudioError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
