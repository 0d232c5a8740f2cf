"""sclite scoring: counts checked by hand, ESPnet's layout, mismatched sets refused."""

import pytest

from espnet_distill.scoring.sclite import parse_result, score, score_dir

pytestmark = pytest.mark.usefixtures("sclite")  # skipped, saying so, without sclite


def write(path, table):
    path.write_text("".join(f"{k} {v}\n" if v else f"{k}\n" for k, v in table.items()))
    return path


def test_word_and_character_errors_counted_by_sclite(tmp_path):
    ref = write(tmp_path / "ref", {"u1": "HELLO WORLD", "u2": "THIS IS A TEST"})
    hyp = write(tmp_path / "hyp", {"u1": "HELLO WORD", "u2": "THIS IS TEST EXTRA"})
    wer = score(ref, hyp, None, tmp_path / "score_wer", chars=False)
    # u1: 1 substitution; u2: 1 deletion (A), 1 insertion (EXTRA); 6 reference words
    assert (wer.snt, wer.wrd) == (2, 6) and (wer.sub, wer.dele, wer.ins) == (16.7, 16.7, 16.7) and wer.err == 50.0
    cer = score(ref, hyp, None, tmp_path / "score_cer", chars=True)
    assert cer.wrd == len("HELLO WORLD") + len("THIS IS A TEST")
    assert "H E L L O <space> W O R D (u1-u1)" in (tmp_path / "score_cer" / "hyp.trn").read_text()
    assert parse_result(tmp_path / "score_wer" / "result.txt") == wer


def test_missing_hypotheses_are_an_error_and_empty_ones_are_deletions(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write(data / "text", {"u1": "A B", "u2": "C"})
    decode = tmp_path / "decode"
    decode.mkdir()
    write(decode / "text", {"u1": "A B"})
    with pytest.raises(ValueError, match="no hypothesis for 1 utterances, e.g. 'u2'"):
        score_dir(data, decode)
    write(decode / "text", {"u1": "A B", "u2": ""})
    scores = score_dir(data, decode)
    assert scores["wer"]["dele"] == pytest.approx(33.3) and (decode / "score_cer" / "result.txt").is_file()
