"""Token lists in ESPnet's layout, and the tokenizers that go with them.

A token list has one token per line: ``<blank>`` (id 0, CTC's blank),
``<unk>``, the tokens, and ``<sos/eos>`` last, as ESPnet's recipes write them.
``bpe`` trains a sentencepiece model (unigram by default, as ESPnet's recipes
do) on the training text only; ``char`` lists its characters, with
``<space>`` for the word boundary; ``word`` lists the text's space-separated
tokens (words, or the phones of a phoneme transcript: ESPnet's ``word`` type).
"""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, List, Sequence, Union

import sentencepiece as spm

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.utils.fileio import atomic_write

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
BLANK, UNK, SOS_EOS, SPACE = "<blank>", "<unk>", "<sos/eos>", "<space>"
TOKEN_TYPES = ("bpe", "char", "word")


def transcripts(text_file: PathLike) -> List[str]:
    """The transcripts of a Kaldi ``text`` file, in file order."""
    return list(read_kaldi_map(text_file).values())


def write_token_list(path: PathLike, tokens: Sequence[str]) -> None:
    """``<blank>``, ``<unk>``, ``tokens`` (without repeats), ``<sos/eos>``, one per line."""
    special = {BLANK, UNK, SOS_EOS}
    body = [t for t in dict.fromkeys(tokens) if t not in special]
    with atomic_write(path) as f:
        f.write("\n".join([BLANK, UNK, *body, SOS_EOS]) + "\n")


def read_token_list(path: PathLike) -> List[str]:
    tokens = [line.rstrip("\n") for line in Path(path).read_text(encoding="utf-8").splitlines()]
    if not tokens or tokens[0] != BLANK or len(set(tokens)) != len(tokens):
        raise ValueError(f"{path}: not a token list (first token must be {BLANK}, no repeats)")
    return tokens


def char_tokens(lines: Iterable[str]) -> List[str]:
    """The characters of ``lines`` in sorted order, ``<space>`` for the blank between words."""
    chars = sorted({c for line in lines for c in line})
    return [SPACE if c == " " else c for c in chars]


def word_tokens(lines: Iterable[str]) -> List[str]:
    """The space-separated tokens of ``lines`` (words, or phones), in sorted order."""
    return sorted({t for line in lines for t in line.split()})


def train_bpe(lines: Sequence[str], model_path: PathLike, vocab_size: int, model_type: str = "unigram") -> List[str]:
    """Train a sentencepiece model on ``lines``; write it to ``model_path``; return its pieces.

    The model is written atomically; ``<unk>`` and the control symbols are not among the pieces returned.
    """
    model_path = Path(model_path)
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "text"
        text.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(tmp) / "bpe"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            input_sentence_size=100_000_000,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            minloglevel=2,
        )
        model_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_model = model_path.with_name(f".{model_path.name}.tmp")
        shutil.copy(Path(tmp) / "bpe.model", tmp_model)
        tmp_model.replace(model_path)
    processor = spm.SentencePieceProcessor(model_file=str(model_path))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    logger.info("sentencepiece %s model with %d pieces: %s", model_type, len(pieces), model_path)
    return [p for p in pieces if p != UNK]


class Tokenizer:
    """Text to token ids and back, for a token list (and a sentencepiece model for ``bpe``)."""

    def __init__(self, token_list: Sequence[str], token_type: str, bpe_model: PathLike = None) -> None:
        if token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
        if token_type == "bpe" and bpe_model is None:
            raise ValueError("token_type bpe needs the sentencepiece model (bpemodel)")
        self.token_list = list(token_list)
        self.token_type = token_type
        self.ids = {t: i for i, t in enumerate(self.token_list)}
        self.unk_id = self.ids[UNK]
        self.processor = spm.SentencePieceProcessor(model_file=str(bpe_model)) if token_type == "bpe" else None

    def tokens(self, text: str) -> List[str]:
        if self.processor is not None:
            return self.processor.encode(text, out_type=str)
        if self.token_type == "word":
            return text.split()
        return [SPACE if c == " " else c for c in text]

    def encode(self, text: str) -> List[int]:
        return [self.ids.get(t, self.unk_id) for t in self.tokens(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids (blanks and repeats already removed) to text; ``<unk>`` and control symbols dropped."""
        tokens = [self.token_list[i] for i in ids if self.token_list[i] not in (BLANK, SOS_EOS)]
        if self.processor is not None:
            return self.processor.decode([t for t in tokens if t != UNK])
        if self.token_type == "word":
            return " ".join(t for t in tokens if t != UNK)
        return "".join(" " if t == SPACE else t for t in tokens if t != UNK).strip()
