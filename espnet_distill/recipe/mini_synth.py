"""Build the embedded mini corpus (see ``espnet_distill.data.mini_synth``).

Subcommands, in order:
    plan       choose speakers and sentences; write the plan and spk2voice
    synth      render the utterances of one plan split to WAV (one job)
    data_dirs  check every WAV and write the Kaldi data dirs
    sentences  every normalized sentence of the text source, one a line (the language model's text:
               the LM stage removes the dev and test sentences from it)

Example:
    python -m espnet_distill.recipe.mini_synth plan --size tiny --seed 1 --out_dir data/local/mini_synth
    python -m espnet_distill.recipe.mini_synth synth --plan data/local/mini_synth/plan --wav_dir wav
    python -m espnet_distill.recipe.mini_synth data_dirs --plan data/local/mini_synth/plan \\
        --wav_dir wav --data_root data
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.mini_synth import (
    CORPUS_SIZES,
    default_sentences,
    describe_speakers,
    plan_corpus,
    synthesize,
    write_data_dirs,
    write_plan,
)
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="choose speakers and sentences")
    plan.add_argument("--size", choices=sorted(CORPUS_SIZES), default="default")
    plan.add_argument("--seed", type=int, default=1)
    plan.add_argument("--out_dir", type=Path, required=True)
    synth = sub.add_parser("synth", help="render one plan file to WAV")
    synth.add_argument("--plan", type=Path, required=True)
    synth.add_argument("--wav_dir", type=Path, required=True)
    dirs = sub.add_parser("data_dirs", help="write the Kaldi data dirs")
    dirs.add_argument("--plan", type=Path, required=True)
    dirs.add_argument("--wav_dir", type=Path, required=True)
    dirs.add_argument("--data_root", type=Path, required=True)
    dirs.add_argument("--seed", type=int, default=1)
    text = sub.add_parser("sentences", help="write every sentence of the text source")
    text.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        if args.command == "plan":
            sentences = default_sentences()
            plan = plan_corpus(sentences, size=args.size, seed=args.seed)
            write_plan(plan, args.out_dir / "plan")
            describe_speakers(args.seed, args.out_dir / "spk2voice", pool_speakers=CORPUS_SIZES[args.size][2])
            counts = ", ".join(f"{split} {len(utts)}" for split, utts in plan.items())
            logger.info("planned utterances from %d sentences: %s", len(sentences), counts)
        elif args.command == "synth":
            rendered = synthesize(args.plan, args.wav_dir)
            logger.info("%s: rendered %d new utterances", args.plan, rendered)
        elif args.command == "sentences":
            sentences = default_sentences()
            with atomic_write(args.out) as f:
                f.writelines(f"{sentence}\n" for sentence in sentences)
            logger.info("%s: %d sentences", args.out, len(sentences))
        else:
            hours = write_data_dirs(args.plan, args.wav_dir, args.data_root, seed=args.seed)
            for name, value in hours.items():
                logger.info("%s/%s: %.3f hours", args.data_root, name, value)
    except (AudioError, DataDirError, FileNotFoundError, ValueError, RuntimeError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
