"""Sentences from English text, normalized the LibriSpeech way.

LibriSpeech transcripts are upper case words of letters and apostrophes,
without punctuation or digits.  Sentences that a TTS voice would read
differently from their transcript (digits, acronyms, abbreviations, symbols)
are dropped rather than guessed at.
"""

import re
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Union

# Sentence ends: . ! ? (optionally followed by a closing quote) and white space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
# Only these characters may occur in a sentence we keep.
_ALLOWED = re.compile(r"^[A-Za-z ,.;:!?'\"()\-]+$")
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co|Mt|No)\.|\b[A-Za-z]\.")
_WORD = re.compile(r"[A-Z']+")


def fortune_records(path: Union[str, Path]) -> Iterator[str]:
    """Yield the text of each record of a fortune file (records end with ``%``).

    Attribution lines (``-- Author``) are dropped and lines are joined.
    """
    record: List[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() == "%":
                if record:
                    yield " ".join(record)
                record = []
            elif line.lstrip().startswith("--"):
                continue
            elif line.strip():
                record.append(line.strip())
    if record:
        yield " ".join(record)


def split_sentences(text: str) -> List[str]:
    """Split running text into sentences at ``.``, ``!`` and ``?``."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def normalize_sentence(sentence: str, min_words: int = 4, max_words: int = 20) -> Optional[str]:
    """LibriSpeech-style transcript of ``sentence``, or None to drop it.

    Upper case, apostrophes inside words kept, hyphens and dashes become
    spaces, other punctuation removed.  Dropped: digits or symbols, acronyms
    (upper-case words of two or more letters), abbreviations with periods,
    and sentences outside ``[min_words, max_words]``.
    """
    if not _ALLOWED.match(sentence) or _ABBREVIATION.search(sentence):
        return None
    raw_words = re.findall(r"[A-Za-z']+", sentence)
    if any(len(w.strip("'")) > 1 and w.strip("'").isupper() for w in raw_words):
        return None
    text = sentence.replace("-", " ").upper()
    words = []
    for token in re.findall(r"[A-Z']+", text):
        token = token.strip("'")
        if token and _WORD.fullmatch(token) and "''" not in token:
            words.append(token)
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def sentences_from_files(paths: Iterable[Union[str, Path]], min_words: int = 4, max_words: int = 20) -> List[str]:
    """Unique normalized sentences of fortune files, in first-seen order."""
    seen = set()
    sentences = []
    for path in paths:
        for record in fortune_records(path):
            for sentence in split_sentences(record):
                normalized = normalize_sentence(sentence, min_words, max_words)
                if normalized is not None and normalized not in seen:
                    seen.add(normalized)
                    sentences.append(normalized)
    return sentences
