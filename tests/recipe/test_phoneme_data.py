"""The phoneme copy of a data dir: espeak-ng's phones, or a lexicon's, and clear errors."""

import pytest

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.recipe.phoneme_data import main, write_phoneme_dir
from espnet_distill.text.phonemes import PhonemizerError, lexicon_phonemize, read_lexicon
from tests.conftest import one_error, require_programs, run_main

LEXICON = "THE\tDH AH0\nTHE\tDH IY1\nDOG\tD AO1 G\nCAT K AE1 T\n"


def test_the_copy_keeps_the_audio_and_speakers_and_has_phones(data_dir_copy, tmp_path):
    require_programs("espeak-ng")
    out = tmp_path / "dev_phn"
    out.mkdir()
    (out / ".stage_inputs.json").write_text("{}")  # the recipe's stamp: kept
    count = write_phoneme_dir(data_dir_copy, out)
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        assert (out / name).read_text() == (data_dir_copy / name).read_text()
    words, phones = read_kaldi_map(data_dir_copy / "text"), read_kaldi_map(out / "text")
    assert list(phones) == list(words) and 20 <= count <= 60
    assert all(len(phones[u].split()) > len(words[u].split()) for u in words)
    assert (out / ".stage_inputs.json").read_text() == "{}" and "espeak" in (out / "phonemizer").read_text().lower()


def test_a_lexicon_gives_its_first_pronunciation_without_stress(tmp_path):
    (tmp_path / "lexicon.txt").write_text(LEXICON)
    lexicon = read_lexicon(tmp_path / "lexicon.txt")
    assert lexicon["THE"] == ["DH", "AH"] and lexicon["CAT"] == ["K", "AE", "T"]
    assert lexicon_phonemize({"u1": "the dog", "u2": "CAT"}, lexicon) == {
        "u1": ["DH", "AH", "D", "AO", "G"],
        "u2": ["K", "AE", "T"],
    }
    with pytest.raises(PhonemizerError, match="utterance 'u3': BIRD, FISH not in the lexicon"):
        lexicon_phonemize({"u3": "THE FISH BIRD"}, lexicon)


def test_a_missing_lexicon_or_word_is_one_error_and_nothing_is_written(
    data_dir_copy, tmp_path, capsys, restore_logging
):
    _, _, err = run_main(
        main, capsys, "--lexicon", str(tmp_path / "none.txt"), str(data_dir_copy), str(tmp_path / "o1")
    )
    assert "openslr.org/11" in one_error(err, "none.txt: no such lexicon")
    (tmp_path / "lexicon.txt").write_text(LEXICON)
    _, _, err = run_main(
        main, capsys, "--lexicon", str(tmp_path / "lexicon.txt"), str(data_dir_copy), str(tmp_path / "o2")
    )
    one_error(err, "not in the lexicon", "utterance")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
