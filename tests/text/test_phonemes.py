"""Phoneme transcripts through espeak-ng: deterministic, in context, stress-free, one per utterance."""

import pytest

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.text.phonemes import STRESS_MARKS, PhonemizerError, phone_set, phonemize
from tests.conftest import require_programs


@pytest.fixture(autouse=True)
def espeak():
    require_programs("espeak-ng")


def test_words_are_pronounced_in_context_without_stress_marks():
    phones = phonemize({"u1": "A CAT SAT ON THE MAT", "u2": "i don't know"})
    assert phones["u1"] == ["ɐ", "k", "æ", "t", "s", "æ", "t", "ɔ", "n", "ð", "ə", "m", "æ", "t"]
    assert phones["u2"][:5] == ["aɪ", "d", "oʊ", "n", "t"]  # a diphthong is one phone
    assert not any(mark in p for p in phones["u1"] + phones["u2"] for mark in STRESS_MARKS)


def test_every_labelled_utterance_gets_the_same_phones_each_time(tiny_corpus):
    texts = read_kaldi_map(tiny_corpus["data"] / "train" / "text")
    first, again = phonemize(texts), phonemize(dict(reversed(list(texts.items()))))
    assert list(first) == list(texts) and first == again
    assert all(len(first[utt]) >= len(texts[utt].split()) for utt in texts)
    assert 20 <= len(phone_set(first)) <= 60


def test_a_long_utterance_is_one_transcript():
    words = "THE QUICK BROWN FOX JUMPED OVER THE LAZY DOG AND " * 12
    phones = phonemize({"long": words, "short": "THE DOG"})
    assert len(phones["long"]) > 300 and phones["short"] == ["ð", "ə", "d", "ɑː", "ɡ"]


def test_an_empty_transcript_is_named():
    with pytest.raises(PhonemizerError, match="utterance 'u2' has an empty transcript"):
        phonemize({"u1": "THE DOG", "u2": "  "})
