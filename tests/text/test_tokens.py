"""Token lists in ESPnet's layout and tokenizers that round-trip the training text."""

import pytest

from espnet_distill.text.tokens import (
    BLANK,
    SOS_EOS,
    UNK,
    Tokenizer,
    char_tokens,
    read_token_list,
    train_bpe,
    transcripts,
    word_tokens,
    write_token_list,
)


def test_char_tokens_round_trip(tiny_corpus, tmp_path):
    lines = transcripts(tiny_corpus["data"] / "train" / "text")
    write_token_list(tmp_path / "tokens.txt", char_tokens(lines))
    tokens = read_token_list(tmp_path / "tokens.txt")
    assert tokens[:3] == [BLANK, UNK, "<space>"] and tokens[-1] == SOS_EOS and "A" in tokens
    tokenizer = Tokenizer(tokens, "char")
    for line in lines:
        ids = tokenizer.encode(line)
        assert UNK not in [tokens[i] for i in ids] and tokenizer.decode(ids) == line
    assert tokenizer.decode(tokenizer.encode("HELLO ~ WORLD")) == "HELLO  WORLD"  # unknown characters are dropped


def test_word_tokens_of_phoneme_transcripts_round_trip(tmp_path):
    lines = ["ð ə d ɑː ɡ", "ɐ k æ t", "aɪ d oʊ n t"]
    write_token_list(tmp_path / "tokens.txt", word_tokens(lines))
    tokens = read_token_list(tmp_path / "tokens.txt")
    assert tokens[:2] == [BLANK, UNK] and tokens[-1] == SOS_EOS and "aɪ" in tokens and "a" not in tokens
    assert len(tokens) == 3 + len({p for line in lines for p in line.split()})
    tokenizer = Tokenizer(tokens, "word")
    for line in lines:
        ids = tokenizer.encode(line)
        assert len(ids) == len(line.split()) and tokenizer.decode(ids) == line
    assert tokenizer.decode(tokenizer.encode("ð ʒ ə")) == "ð ə"  # an unknown phone is <unk>, dropped in the output


def test_bpe_is_trained_on_the_given_text_and_round_trips(tiny_corpus, tmp_path):
    lines = transcripts(tiny_corpus["data"] / "train" / "text")
    pieces = train_bpe(lines, tmp_path / "bpe.model", vocab_size=50)
    write_token_list(tmp_path / "tokens.txt", pieces)
    tokens = read_token_list(tmp_path / "tokens.txt")
    assert len(tokens) == 50 + 2  # <blank> and <sos/eos> around sentencepiece's 50 pieces (with <unk>)
    tokenizer = Tokenizer(tokens, "bpe", tmp_path / "bpe.model")
    for line in lines[:10]:
        assert tokenizer.decode(tokenizer.encode(line)) == line


def test_a_file_that_is_not_a_token_list_is_refused(tmp_path):
    (tmp_path / "bad.txt").write_text("A\nB\n")
    with pytest.raises(ValueError, match="not a token list"):
        read_token_list(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="needs the sentencepiece model"):
        Tokenizer([BLANK, UNK, SOS_EOS], "bpe")
