"""The LM weight chosen on the validation set, and RESULTS.md's section of the decodings with and without the LM."""

import json

import pytest

from espnet_distill.recipe.lm_weight import choose_weight, lm_decode_name, main, weight_name
from espnet_distill.recipe.make_results import lm_section


def write_score(path, cer, wer=None, rtf=0.01):
    path.mkdir(parents=True, exist_ok=True)
    (path / "score.json").write_text(json.dumps({"cer": {"err": cer}, "wer": {"err": wer or 2 * cer}, "rtf": rtf}))


def test_the_weight_of_the_lowest_validation_error_wins_and_ties_go_to_the_smaller(tmp_path):
    exp = tmp_path / "asr_x_train"
    assert weight_name(1) == "1.0" and lm_decode_name("decode_ctc_beam10", 0.4) == "decode_ctc_beam10_lm0.4"
    for weight, cer in ((0, 40.0), (0.2, 38.0), (0.4, 37.0), (0.6, 37.0)):
        write_score(
            exp / ("decode_ctc_beam10" if weight == 0 else lm_decode_name("decode_ctc_beam10", weight)) / "dev", cer
        )
    record = choose_weight(exp, "decode_ctc_beam10", "dev", [0.2, 0.4, 0.6], "cer")
    assert record["weight"] == 0.4 and record["errors"] == {"0.0": 40.0, "0.2": 38.0, "0.4": 37.0, "0.6": 37.0}
    assert choose_weight(exp, "decode_ctc_beam10", "dev", [0.2], "wer")["weight"] == 0.2
    write_score(exp / "decode_ctc_beam10_lm0.2" / "dev", 45.0)
    assert choose_weight(exp, "decode_ctc_beam10", "dev", [0.2], "cer")["weight"] == 0.0  # the LM only where it helps
    with pytest.raises(FileNotFoundError, match="decode_ctc_beam10_lm0.8/dev/score.json"):
        choose_weight(exp, "decode_ctc_beam10", "dev", [0.8], "cer")


def test_results_show_each_model_without_and_with_the_lm_at_its_weight(tmp_path, capsys):
    exp = tmp_path / "exp"
    model = exp / "asr_deep_thin_train"
    for weight, cer in ((0, 40.0), (0.2, 38.0), (0.4, 39.0)):
        name = "decode_ctc_beam10" if weight == 0 else lm_decode_name("decode_ctc_beam10", weight)
        write_score(model / name / "dev", cer)
    main(["--asr_exp", str(model), "--decode", "decode_ctc_beam10", "--valid_set", "dev", "--weights", "0.2", "0.4"])
    assert capsys.readouterr().out.strip() == "0.2"
    write_score(model / "decode_ctc_beam10" / "test", 41.0, 80.0, rtf=0.02)
    write_score(model / "decode_ctc_beam10_lm0.2" / "test", 36.5, 70.0, rtf=0.05)
    (exp / "lm_char").mkdir()
    (exp / "lm_char" / "perplexity.json").write_text(
        json.dumps({"perplexity": 4.2, "valid_text": "data/dev/text", "tokens": 7199})
    )
    lines = lm_section(exp, ["test"])
    assert "|deep_thin_train|test|0.2|0.0: 40.0 0.2: 38.0 0.4: 39.0|41.0|36.5|80.0|70.0|0.0200|0.0500|" in lines
    assert any("lm_char: perplexity 4.200 on data/dev/text" in line for line in lines)
    assert lm_section(exp, ["other"]) == []
