"""RESULTS.md's SUPERB section: runs read by task, upstream and training set, mean ± spread over seeds."""

import json
from pathlib import Path

import pytest

from espnet_distill.recipe.make_results import superb_section
from espnet_distill.report.superb import read_superb, render_superb


def write_run(exp: Path, name: str, weights, scores, params=1_500_000) -> None:
    run = exp / name
    run.mkdir(parents=True)
    (run / "layer_weights.json").write_text(json.dumps({"upstream_params": params, "weights": weights}))
    for dset, (wer, cer) in scores.items():
        out = run / "decode_ctc_greedy" / dset
        out.mkdir(parents=True)
        (out / "score.json").write_text(json.dumps({"wer": {"err": wer}, "cer": {"err": cer}}))


@pytest.fixture
def exp(tmp_path):
    exp = tmp_path / "exp"
    write_run(exp, "superb_asr_teacher_seed1", [0.2, 0.8], {"dev": (30.0, 10.0), "test": (32.0, 11.0)})
    write_run(exp, "superb_asr_teacher_seed2", [0.4, 0.6], {"dev": (34.0, 12.0), "test": (36.0, 13.0)})
    write_run(exp, "superb_pr_teacher_seed1", [0.5, 0.5], {"dev": (20.0, 0.0), "test": (21.0, 0.0)})
    write_run(exp, "superb_asr_fbank_seed1", [1.0], {"test": (50.0, 20.0)}, params=0)
    write_run(exp, "superb_pr_random_deep_thin_seed1", [0.5, 0.5], {"test": (90.0, 0.0)})
    write_run(exp, "superb_pr_deep_thin_seed1_train_10pct", [0.5, 0.5], {"test": (40.0, 0.0)})
    write_run(exp, "superb_pr_deep_thin_seed2_train_10pct", [0.5, 0.5], {"test": (44.0, 0.0)})
    (exp / "superb_asr_teacher_seed3").mkdir()  # unfinished: no layer_weights.json
    return exp


def test_runs_are_read_by_training_set_and_upstream(exp):
    runs = read_superb(exp)
    assert sorted(runs) == ["", "train_10pct"]
    assert sorted(runs[""]) == ["fbank", "random_deep_thin", "teacher"]
    teacher = runs[""]["teacher"]
    assert teacher.scores[("asr", "test", "wer")] == [32.0, 36.0]
    assert teacher.scores[("asr", "dev", "cer")] == [10.0, 12.0]
    assert teacher.scores[("pr", "test", "per")] == [21.0]  # pr: sclite's word error over phone tokens
    assert teacher.weights["asr"] == [[0.2, 0.8], [0.4, 0.6]]
    assert runs["train_10pct"]["deep_thin"].scores[("pr", "test", "per")] == [40.0, 44.0]


def test_the_table_rows_and_cells(exp):
    table = render_superb(read_superb(exp)[""], "dev", "test")
    assert table[0].startswith("| upstream | params | ASR CER dev | ASR CER test | ASR WER test | PR PER dev |")
    rows = [line.split(" | ") for line in table[2:]]
    assert [row[0] for row in rows] == ["| fbank", "| teacher", "| random_deep_thin"]  # fbank, teacher, floors
    teacher = rows[1]
    assert teacher[1] == "1.50 M" and teacher[2] == "11.0 ± 1.4" and teacher[4] == "34.0 ± 2.8"
    assert teacher[5] == "20.0" and teacher[-1] == "2 |"  # one PR seed; two seeds at most
    assert rows[0][1] == "0.00 M" and rows[0][2] == "-"  # fbank: no dev decoding here


def test_the_section_has_a_table_per_training_set_and_the_plot(exp, tmp_path):
    lines = superb_section(exp, "dev", "test", tmp_path / "plots", tmp_path)
    text = "\n".join(lines)
    main, low = text.split("Downstreams trained on train_10pct:")
    assert "| teacher |" in main and "| deep_thin |" not in main
    assert "| deep_thin | 1.50 M | - | - | - | - | 42.0 ± 2.8 | 2 |" in low
    assert (tmp_path / "plots" / "superb_layer_weights.png").stat().st_size > 0
    assert superb_section(tmp_path / "empty", "dev", "test", tmp_path / "plots", tmp_path) == []
