"""A pruned structure drawn to a target size: the benchmarks' stand-in for a pruning run's gates."""

from pathlib import Path

import pytest
import yaml

from espnet_distill.bin import draw_pruned
from espnet_distill.distill.export import build_student
from espnet_distill.prune.draw import drawn_structure
from tests.prune.test_gates import CNN, CONF

BENCHMARK = Path(__file__).resolve().parents[2] / "egs" / "mini_synth" / "asr1" / "conf" / "benchmark"


def params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def test_a_drawn_structure_has_the_target_size_and_builds_it():
    description = {
        "frontend": "wav_cnn",
        "frontend_conf": CNN,
        "encoder": "transformer",
        "encoder_conf": {**CONF, "output_size": 32},
    }
    full = params(*build_student(description))
    pruned, size = drawn_structure(description, target_ratio=0.4, seed=1)
    per_head = 4 * 32 * 8 + 3 * 8  # the coarsest unit of this tiny encoder (about 10% of the target)
    assert abs(size - 0.4 * full) <= per_head / 2
    assert params(*build_student(pruned)) == size
    heads, units = pruned["encoder_conf"]["layer_heads"], pruned["encoder_conf"]["layer_ffn_dims"]
    assert len(heads) == len(units) == CONF["num_layers"] and sum(heads) < 12 and sum(units) < 3 * 48
    channels = [layer[0] for layer in pruned["frontend_conf"]["conv_layers"]]
    assert channels[-1] == CNN["conv_layers"][-1][0] and sum(channels[:-1]) < 40  # the last is kept
    other, _ = drawn_structure(description, target_ratio=0.4, seed=2)
    assert other != pruned  # another draw
    only_ffn, size = drawn_structure(description, units=["ffn"], target_ratio=0.6)
    assert only_ffn["encoder_conf"]["layer_heads"] == [4, 4, 4] and "layer_ffn_dims" in only_ffn["encoder_conf"]
    with pytest.raises(ValueError, match="give target_params or target_ratio"):
        drawn_structure(description)


def test_the_benchmarks_drawn_dphubert_is_what_the_command_writes(tmp_path):
    """conf/benchmark/paper_dphubert_drawn.yaml: HuBERT Base at DPHuBERT's size (23.6 M), regenerated."""
    out = tmp_path / "drawn.yaml"
    draw_pruned.main([str(BENCHMARK / "paper_hubert_base.yaml"), "--target_ratio", "0.25", "--out", str(out)])
    committed = yaml.safe_load((BENCHMARK / "paper_dphubert_drawn.yaml").read_text())
    assert yaml.safe_load(out.read_text()) == committed
    assert params(*build_student(committed)) == pytest.approx(23.59e6, rel=0.02)
