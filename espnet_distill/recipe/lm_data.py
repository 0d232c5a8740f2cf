"""The language model's data: its training text, and the shape files ESPnet's LM task batches by.

Subcommands:
    text   the LM training text (Kaldi ``text``: ``lm<N> <sentence>``) from plain text files (one sentence
           a line, ``.gz`` read as such) and Kaldi text files (ids dropped), without any sentence of the
           ``--exclude`` files (the validation and test transcripts): the count excluded is logged, and
           the output is checked to hold none of them
    shape  ``<id> <tokens>,<vocabulary>`` for each line of a Kaldi text file, tokenized as the ASR models are

Example:
    python -m espnet_distill.recipe.lm_data text --text data/local/lm_sentences.txt \\
        --kaldi_text data/train/text --exclude data/dev/text data/test/text --out data/lm_train/text
    python -m espnet_distill.recipe.lm_data shape --token_list data/token_list/char/tokens.txt \\
        --token_type char data/lm_train/text exp/lm_stats/train/text_shape
"""

import argparse
import gzip
import logging
from pathlib import Path
from typing import IO, Iterator, List, Optional, Sequence, Set

from espnet_distill.data.kaldi_dir import DataDirError, read_kaldi_map
from espnet_distill.text.tokens import Tokenizer, read_token_list
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def _open_text(path: Path) -> IO[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such LM text file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def normalized(line: str) -> str:
    """A sentence with its whitespace collapsed: the form sentences are compared in."""
    return " ".join(line.split())


def sentences(plain: Sequence[Path], kaldi: Sequence[Path]) -> Iterator[str]:
    """The non-empty sentences of ``plain`` files (one a line) and of Kaldi text files (after the id)."""
    for path in plain:
        with _open_text(path) as f:
            for line in f:
                sentence = normalized(line)
                if sentence:
                    yield sentence
    for path in kaldi:
        for sentence in read_kaldi_map(path).values():
            if normalized(sentence):
                yield normalized(sentence)


def excluded_sentences(paths: Sequence[Path]) -> Set[str]:
    """The transcripts of Kaldi text files, normalized."""
    return {normalized(text) for path in paths for text in read_kaldi_map(path).values()}


def write_lm_text(out: Path, plain: Sequence[Path], kaldi: Sequence[Path], exclude: Sequence[Path]) -> dict:
    """Write the LM training text without any excluded sentence; return the counts written and excluded."""
    banned = excluded_sentences(exclude)
    written = dropped = 0
    with atomic_write(out) as f:
        for sentence in sentences(plain, kaldi):
            if sentence in banned:
                dropped += 1
                continue
            written += 1
            f.write(f"lm{written:09d} {sentence}\n")
    if written == 0:
        out.unlink()
        raise ValueError(f"{out}: no sentence left for the LM (sources: {[str(p) for p in [*plain, *kaldi]]})")
    leaked = leaked_sentences(out, banned)
    if leaked:  # a leak must never pass silently, whatever wrote the file
        out.unlink()
        raise ValueError(f"{out}: holds {len(leaked)} excluded sentences, e.g. {leaked[0]!r}")
    return dict(sentences=written, excluded=dropped, excluded_from=[str(p) for p in exclude])


def text_lines(path: Path) -> Iterator[tuple]:
    """``(id, sentence)`` of each line of a Kaldi text file, streamed (an LM corpus can be large)."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.split(maxsplit=1)
            if len(parts) < 2:
                raise DataDirError(f"{path}:{number}: expected '<id> <sentence>', got {line.strip()!r}")
            yield parts[0], normalized(parts[1])


def leaked_sentences(text: Path, banned: Set[str]) -> List[str]:
    """The sentences of Kaldi text file ``text`` that are in ``banned``."""
    return [sentence for _, sentence in text_lines(text) if sentence in banned]


def write_shapes(text: Path, out: Path, tokenizer: Tokenizer) -> int:
    """``<id> <tokens>,<vocabulary>`` for each line of ``text``; an empty transcript is an error naming it."""
    vocab = len(tokenizer.token_list)
    count = 0
    with atomic_write(out) as f:
        for utt, sentence in text_lines(text):
            length = len(tokenizer.encode(sentence))
            if length == 0:
                raise ValueError(f"{text}: utterance {utt!r} has no tokens")
            f.write(f"{utt} {length},{vocab}\n")
            count += 1
    return count


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    text = sub.add_parser("text", help="the LM training text, without the excluded sentences")
    text.add_argument("--text", type=Path, nargs="*", default=[], help="plain text files (.gz too)")
    text.add_argument("--kaldi_text", type=Path, nargs="*", default=[], help="Kaldi text files")
    text.add_argument(
        "--exclude", type=Path, nargs="*", default=[], help="Kaldi text files none of whose sentences may be used"
    )
    text.add_argument("--out", type=Path, required=True)
    shape = sub.add_parser("shape", help="the token counts of a Kaldi text file")
    shape.add_argument("--token_list", type=Path, required=True)
    shape.add_argument("--token_type", required=True)
    shape.add_argument("--bpemodel", default=None)
    shape.add_argument("text", type=Path)
    shape.add_argument("out", type=Path)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        if args.command == "text":
            if not args.text and not args.kaldi_text:
                raise ValueError("give the LM's text with --text and/or --kaldi_text")
            counts = write_lm_text(args.out, args.text, args.kaldi_text, args.exclude)
            logger.info(
                "%s: %d sentences (%d excluded, being in %s)",
                args.out,
                counts["sentences"],
                counts["excluded"],
                " ".join(counts["excluded_from"]) or "no file",
            )
        else:
            tokenizer = Tokenizer(read_token_list(args.token_list), args.token_type, args.bpemodel)
            count = write_shapes(args.text, args.out, tokenizer)
            logger.info("%s: token counts of %d lines", args.out, count)
    except (DataDirError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
