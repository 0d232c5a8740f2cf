"""RESULTS.md's summary and plots from experiment directories: seeds pooled, kinds told apart, curves read."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from espnet_distill.recipe import make_results
from espnet_distill.report import plots, study

PNG = b"\x89PNG\r\n\x1a\n"


def fake_asr_exp(
    exp: Path,
    model: str,
    ftset: str,
    frontend: str,
    params: int,
    cer: dict,
    seed: int = 1,
    source=None,
    decode: str = "decode_ctc_greedy",
) -> None:
    """An exp/asr_<model>_<ftset> with a checkpoint of ``params`` weights and a score.json per set (and,
    given ``source``, the student_source.json the ASR task writes)."""
    d = exp / f"asr_{model}_{ftset}"
    d.mkdir(parents=True, exist_ok=True)
    if source is not None:
        (d / "student_source.json").write_text(json.dumps({"frontend": frontend, "loss": None, **source}))
    (d / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "frontend": frontend,
                "seed": seed,
                "train_data_path_and_name_and_type": [[f"data/{ftset}/wav.scp", "speech", "sound"]],
            }
        )
    )
    torch.save({"w": torch.zeros(params), "frontend.num_updates": torch.tensor(3)}, d / "valid.cer_ctc.ave.pth")
    for dset, err in cer.items():
        out = d / decode / dset
        out.mkdir(parents=True)
        score = {
            kind: {
                "snt": 2,
                "wrd": 10,
                "corr": 0,
                "sub": 0,
                "dele": 0,
                "ins": 0,
                "err": err * (2 if kind == "wer" else 1),
                "s_err": 100.0,
            }
            for kind in ("wer", "cer")
        }
        (out / "score.json").write_text(json.dumps({**score, "rtf": params / 1e6}))


@pytest.fixture
def exp(tmp_path):
    exp = tmp_path / "exp"
    fake_asr_exp(exp, "teacher", "train", "wav_cnn", 3000, {"dev": 40.0, "test": 42.0})
    fake_asr_exp(exp, "deep_thin_reg_kl_fbank", "train", "fbank", 900, {"dev": 40.0, "test": 39.0})
    fake_asr_exp(exp, "deep_thin_reg_kl_fbank_seed2", "train", "fbank", 900, {"dev": 42.0, "test": 41.0}, seed=2)
    fake_asr_exp(exp, "scratch_shallow_wide_reg", "train_10pct", "wav_cnn", 2000, {"dev": 70.0, "test": 71.0})
    distill = exp / "distill_deep_thin_reg_kl_fbank"
    distill.mkdir()
    stats = {
        e: {
            "train": {"l1_frontend": 1.0 / e, "loss": 1.0 / e, "time": 3.0},
            "valid": {"regression": 5.0 - e, "discriminative": 2.0 / e, "loss": 6.0 - e},
        }
        for e in (1, 2, 3)
    }
    torch.save({"reporter": {"stats": stats, "epoch": 3}, "model": {}}, distill / "checkpoint.pth")
    return exp


def test_the_summary_reports_greedy_decoding_whatever_else_was_decoded(exp):
    fake_asr_exp(exp, "teacher", "train", "wav_cnn", 3000, {"dev": 30.0, "test": 31.0}, decode="decode_ctc_beam8_lm0.6")
    fake_asr_exp(exp, "teacher", "train", "wav_cnn", 3000, {"dev": 38.0, "test": 39.0}, decode="decode_ctc_beam8")
    fake_asr_exp(exp, "lm_only", "train", "wav_cnn", 3000, {"dev": 30.0}, decode="decode_ctc_beam8_lm0.3")
    fake_asr_exp(exp, "beam_only", "train", "wav_cnn", 3000, {"dev": 33.0}, decode="decode_ctc_beam8")
    fake_asr_exp(exp, "beam_only", "train", "wav_cnn", 3000, {"dev": 32.0}, decode="decode_ctc_beam4")
    by_model = {e.model: e for e in study.read_experiments(exp)}
    assert by_model["teacher"].scores["test"]["cer"]["err"] == 42.0  # greedy, not the beam or the LM
    assert by_model["beam_only"].scores["dev"]["cer"]["err"] == 32.0  # the first beam search without the LM
    assert "lm_only" not in by_model  # only decoded with the LM: not a row of the summary


def test_seeds_are_pooled_and_each_model_described(exp):
    summaries = study.summarize(study.read_experiments(exp))
    assert [(s.first.model, s.first.finetune_set, s.seeds) for s in summaries] == [
        ("teacher", "train", [1]),
        ("deep_thin_reg_kl_fbank", "train", [1, 2]),
        ("scratch_shallow_wide_reg", "train_10pct", [1]),
    ]
    fbank = summaries[1]
    assert fbank.stat("test", "cer") == pytest.approx((40.0, 2.0**0.5))  # mean and sample std of 39 and 41
    assert fbank.stat("dev", "wer") == pytest.approx((82.0, 2.0 * 2.0**0.5))
    assert summaries[0].stat("test", "cer") == (42.0, None)
    assert (fbank.first.kind, fbank.first.loss, fbank.first.frontend, fbank.first.params) == (
        "distilled",
        "reg + KL",
        "fbank",
        900,
    )
    scratch = summaries[2].first
    assert (scratch.kind, scratch.structure, scratch.loss) == ("scratch", "shallow_wide", "-")
    lines = study.render_summary(summaries, "dev", "test")
    assert (
        "|deep_thin_reg_kl_fbank|distilled|fbank|reg + KL|0.00 M|train|2|41.0 ± 1.4|40.0 ± 1.4|82.0 ± 2.8|80.0 ± 2.8|"
        in lines[3]
    )


def test_distillation_curves_come_from_the_reporter_state(exp):
    curves = plots.distill_curves(exp / "distill_deep_thin_reg_kl_fbank")
    assert curves["valid"]["regression"] == [(1, 4.0), (2, 3.0), (3, 2.0)]
    assert curves["train"]["l1_frontend"][1] == (2, 0.5)
    assert "time" not in curves["train"]


def test_results_md_starts_with_the_summary_and_links_its_plots(exp, tmp_path):
    out = tmp_path / "recipe" / "RESULTS.md"
    out.parent.mkdir()
    make_results.main(["--exp_dir", str(exp), "--sets", "test", "dev", "--train_set", "train", "--out", str(out)])
    text = out.read_text()
    assert text.index("## Summary") < text.index("## test: CER")
    for name in ("error_vs_params", "error_vs_rtf", "distill_losses"):
        assert f"![{name}](plots/{name}.png)" in text
        assert (out.parent / "plots" / f"{name}.png").read_bytes()[:8] == PNG


def test_comparisons_claim_only_differences_beyond_the_seed_spread(tmp_path):
    exp = tmp_path / "exp"
    for seed, (kl, reg) in enumerate([(50.0, 60.0), (52.0, 61.0), (54.0, 59.0)], start=1):  # KL better by 8 +- (2 + 1)
        suffix = "" if seed == 1 else f"_seed{seed}"
        fake_asr_exp(exp, f"deep_thin_reg_kl{suffix}", "train_10pct", "wav_cnn", 900, {"test": kl}, seed=seed)
        fake_asr_exp(exp, f"deep_thin_reg{suffix}", "train_10pct", "wav_cnn", 900, {"test": reg}, seed=seed)
    fake_asr_exp(exp, "deep_thin_reg_kl_fbank", "train_10pct", "fbank", 900, {"test": 53.0})  # 1 seed: pooled spread
    fake_asr_exp(exp, "shallow_wide_reg_kl", "train_10pct", "wav_cnn", 900, {"test": 60.0})
    fake_asr_exp(exp, "scratch_deep_thin_reg_kl", "train_10pct", "wav_cnn", 900, {"test": 70.0})
    fake_asr_exp(exp, "shallow_wide_reg_kl", "train", "wav_cnn", 900, {"test": 30.0})  # no partner on train
    summaries = study.summarize(study.read_experiments(exp))
    found = [(c.question, c.a.first.model, c.b.first.model) for c in study.pairs(summaries)]
    assert found == [  # deep_thin_reg_kl_fbank has no _reg twin here, shallow_wide_reg_kl on train no partner
        ("reg + KL vs reg", "deep_thin_reg_kl", "deep_thin_reg"),
        ("fbank vs wav_cnn", "deep_thin_reg_kl_fbank", "deep_thin_reg_kl"),
        ("deep-thin vs shallow-wide", "deep_thin_reg_kl", "shallow_wide_reg_kl"),
        ("distilled vs from scratch", "deep_thin_reg", "scratch_deep_thin_reg_kl"),
        ("distilled vs from scratch", "deep_thin_reg_kl", "scratch_deep_thin_reg_kl"),
    ]
    pooled = study.seed_spread(summaries, "test")
    assert pooled == pytest.approx({"train_10pct": ((4.0 + 1.0) / 2) ** 0.5})  # the two repeated models' variances
    by_question = {(c.question, c.a.first.model): c for c in study.pairs(summaries)}
    diff, spread, verdict = study.judge(by_question[("reg + KL vs reg", "deep_thin_reg_kl")], "test", pooled)
    assert diff == pytest.approx(-8.0) and spread == pytest.approx(3.0) and verdict == "deep_thin_reg_kl better"
    # fbank (1 seed, 53) against deep_thin_reg_kl (52 +- 2): 1.0 within 2 + pooled 1.58.
    diff, spread, verdict = study.judge(by_question[("fbank vs wav_cnn", "deep_thin_reg_kl_fbank")], "test", pooled)
    assert diff == pytest.approx(1.0) and spread == pytest.approx(2.0 + 2.5**0.5) and verdict == "within the spread"
    lines = study.render_comparisons(summaries, "test")
    assert (
        "|reg + KL vs reg|train_10pct|deep_thin_reg_kl (3)|deep_thin_reg (3)|52.0 ± 2.0|60.0 ± 1.0|-8.0|3.0|deep_thin_reg_kl better|"
        in lines
    )
    assert "train_10pct 1.6" in lines[-1]
    # Without any repeats there is no spread to judge a single-seed side by: nothing is claimed.
    assert (
        study.judge(by_question[("fbank vs wav_cnn", "deep_thin_reg_kl_fbank")], "test", {})[2]
        == "no seed spread measured"
    )


def shape(layers, width, ffn):
    return {"num_layers": layers, "output_size": width, "ffn_dim": ffn}


def test_what_a_model_is_comes_from_its_files_not_its_name(tmp_path):
    """Exp dirs named nothing like the recipe's: kind, front-end, structure and loss come from
    student_source.json, and the paper's comparisons pair models by those facts."""
    exp = tmp_path / "exp"
    thin, wide = shape(4, 160, 160), shape(2, 256, 1024)
    cer = {"dev": 50.0, "test": 50.0}
    fake_asr_exp(
        exp, "alpha", "train", "wav_cnn", 900, cer, source={"kind": "distilled", "structure": thin, "loss": "reg + KL"}
    )
    fake_asr_exp(
        exp,
        "beta",
        "train",
        "fbank",
        900,
        {"dev": 40.0, "test": 41.0},
        source={"kind": "distilled", "structure": thin, "loss": "reg + KL"},
    )
    fake_asr_exp(
        exp,
        "beta_seed2",
        "train",
        "fbank",
        900,
        {"dev": 42.0, "test": 43.0},
        seed=2,
        source={"kind": "distilled", "structure": thin, "loss": "reg + KL"},
    )
    fake_asr_exp(exp, "gamma", "train", "fbank", 900, cer, source={"kind": "scratch", "structure": thin})
    fake_asr_exp(
        exp, "delta", "train", "wav_cnn", 900, cer, source={"kind": "distilled", "structure": thin, "loss": "reg"}
    )
    fake_asr_exp(
        exp,
        "epsilon",
        "train",
        "wav_cnn",
        2000,
        cer,
        source={"kind": "distilled", "structure": wide, "loss": "reg + KL"},
    )
    fake_asr_exp(
        exp, "zeta", "train", "wav_cnn", 3000, cer, source={"kind": "teacher", "structure": shape(4, 256, 1024)}
    )
    summaries = study.summarize(study.read_experiments(exp))
    by_model = {s.first.model: s for s in summaries}
    assert by_model["beta"].seeds == [1, 2] and "beta_seed2" not in by_model
    assert (by_model["gamma"].first.kind, by_model["zeta"].first.kind, by_model["delta"].first.loss) == (
        "scratch",
        "teacher",
        "reg",
    )
    assert by_model["alpha"].first.structure == "4 x 160, FFN 160"
    found = {(c.question, c.a.first.model, c.b.first.model) for c in study.pairs(summaries)}
    assert found == {
        ("reg + KL vs reg", "alpha", "delta"),
        ("fbank vs wav_cnn", "beta", "alpha"),
        ("deep-thin vs shallow-wide", "alpha", "epsilon"),
        ("distilled vs from scratch", "beta", "gamma"),
    }
