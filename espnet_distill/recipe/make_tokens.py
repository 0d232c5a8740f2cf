"""Token list (and sentencepiece model) from the training transcripts only.

Writes ``<out_dir>/tokens.txt`` (ESPnet's layout: ``<blank>``, ``<unk>``, ...,
``<sos/eos>``) and, for ``bpe``, ``<out_dir>/bpe.model``.

Example:
    python -m espnet_distill.recipe.make_tokens --token_type bpe --vocab_size 100 \\
        --text data/train/text --out_dir data/token_list/bpe_unigram100
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.text.tokens import TOKEN_TYPES, char_tokens, train_bpe, transcripts, word_tokens, write_token_list
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token_type", choices=TOKEN_TYPES, required=True)
    parser.add_argument("--vocab_size", type=int, default=100, help="sentencepiece vocabulary (bpe)")
    parser.add_argument("--bpe_model_type", default="unigram", choices=["unigram", "bpe"])
    parser.add_argument("--text", type=Path, required=True, help="the training set's Kaldi text file")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        lines = transcripts(args.text)
    except DataDirError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    if args.token_type == "bpe":
        tokens = train_bpe(lines, args.out_dir / "bpe.model", args.vocab_size, args.bpe_model_type)
    elif args.token_type == "word":
        tokens = word_tokens(lines)
    else:
        tokens = char_tokens(lines)
    write_token_list(args.out_dir / "tokens.txt", tokens)
    logger.info("%s token list of %d entries: %s", args.token_type, len(tokens) + 3, args.out_dir / "tokens.txt")


if __name__ == "__main__":
    run(main)
