"""Fit codewords for the discriminative loss of a teacher without a codeword head.

Example (a Hugging Face HuBERT, codewords of layer 9):
    python -m espnet_distill.bin.teacher_codebook --teacher_yaml exp/teacher/teacher.yaml \\
        --wav_scp data/train/wav.scp --layer 9 --num_codewords 500 --out exp/teacher/codebook.npz
and then ``model_conf: {codebook: exp/teacher/codebook.npz}`` in the distillation config.
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.files.teacher_spec import read_spec
from espnet_distill.make_teacher.codebook import fit_codebook, save_codebook
from espnet_distill.teacher import CheckpointError, load_teacher
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--teacher_yaml", type=Path, required=True, help="teacher and teacher_conf (the teacher stage writes it)"
    )
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--layer", type=int, required=True, help="teacher layer (0..L) to cluster")
    parser.add_argument("--num_codewords", type=int, default=100)
    parser.add_argument("--max_utterances", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        spec = read_spec(args.teacher_yaml)  # a ConfigError (a ValueError) names the file and the key
        teacher = load_teacher(spec["teacher"], **spec["teacher_conf"])
        codewords = fit_codebook(teacher, args.wav_scp, args.layer, args.num_codewords, args.max_utterances, args.seed)
    except (CheckpointError, AudioError, DataDirError, ValueError, KeyError, OSError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    save_codebook(args.out, codewords, args.layer)
    logger.info("wrote %d codewords of teacher layer %d to %s", len(codewords), args.layer, args.out)


if __name__ == "__main__":
    run(main)
