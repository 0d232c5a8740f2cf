"""bin/benchmark and benchmark.models: parameters, MACs against a hand count, RTF, speed-ups, and its outputs."""

import json

import pytest
import torch
import yaml

from espnet_distill.benchmark.models import macs_per_second, wav_cnn_twin
from espnet_distill.bin import benchmark
from espnet_distill.utils.machine import machine_description, machine_line

SMALL_CONV = [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2], [32, 2, 2]]
ENCODER = dict(output_size=48, num_layers=2, attention_heads=4, ffn_dim=96, pos_conv_kernel=16, pos_conv_groups=4)


def write_descriptions(tmp_path):
    wav_cnn = dict(
        frontend="wav_cnn",
        frontend_conf=dict(conv_layers=SMALL_CONV, output_dim=48),
        encoder="transformer",
        encoder_conf=ENCODER,
    )
    fbank = dict(
        frontend="fbank",
        frontend_conf=dict(conv_channels=32, output_dim=48),
        encoder="transformer",
        encoder_conf=ENCODER,
    )
    paths = {}
    for name, description in (("wav_cnn", wav_cnn), ("fbank", fbank)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(description))
    return paths


def test_macs_of_the_fbank_frontend_match_a_hand_count():
    from espnet_distill.frontend.fbank import FbankFrontend

    frontend = FbankFrontend(output_dim=48, conv_channels=32).eval()
    identity = torch.nn.Module()
    identity.forward = lambda feats, lengths: (feats, lengths)  # count the front-end alone
    macs = macs_per_second(frontend, identity, seconds=2.0)
    mel_frames, frames = 1 + (32000 - 400) // 160, 1 + (32000 - 400) // 320
    expected = mel_frames * 257 * 80 + frames * (80 * 64 * 3 + 32 * 48)  # mel matrix, conv, projection
    assert macs * 2.0 == pytest.approx(expected, rel=1e-6)


def test_benchmark_writes_tables_with_speedups(tiny_corpus, tmp_path):
    paths = write_descriptions(tmp_path)
    out = tmp_path / "bench"
    benchmark.main(
        [
            "--data_dir",
            str(tiny_corpus["data"] / "test"),
            "--out_dir",
            str(out),
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--model",
            f"wav_cnn={paths['wav_cnn']}",
            "--model",
            f"fbank={paths['fbank']}",
            "--macs_seconds",
            "2",
        ]
    )
    report = json.loads((out / "benchmark.json").read_text())
    assert report["utterances"] == 8 and report["reference"] == "wav_cnn"
    models = report["models"]
    assert models["wav_cnn"]["speedup_vs_reference"] == pytest.approx(1.0)
    fbank = models["fbank"]
    assert fbank["wav_cnn_twin"] == "wav_cnn" and len(fbank["rtf_passes"]) == 2
    assert fbank["speedup_vs_wav_cnn"] == pytest.approx(models["wav_cnn"]["rtf"] / fbank["rtf"])
    assert (
        fbank["params"] - fbank["frontend_params"] == models["wav_cnn"]["params"] - models["wav_cnn"]["frontend_params"]
    )
    assert 0 < fbank["rtf"] < 1 and fbank["macs_per_second"] > 0 and not fbank["trained"]
    table = (out / "benchmark.md").read_text()
    assert table.count("\n| ") == 3 and "(wav_cnn)" in table
    # The figures say which CPU they come from (int8 and AVX-512 speed-ups depend on it).
    assert report["machine"] == machine_description()
    assert f"Measured on {machine_line(report['machine'])}." in table


def test_bad_model_paths_are_named(tiny_corpus, tmp_path):
    with pytest.raises(SystemExit):
        benchmark.main(
            [
                "--data_dir",
                str(tiny_corpus["data"] / "test"),
                "--out_dir",
                str(tmp_path),
                "--model",
                f"x={tmp_path / 'missing'}",
            ]
        )
    assert not (tmp_path / "benchmark.json").exists()
    with pytest.raises(SystemExit, match="unique"):
        benchmark.main(["--data_dir", "d", "--out_dir", str(tmp_path), "--model", "a=x", "--model", "a=y"])


def test_wav_cnn_twin_prefers_the_name_without_the_front_end_suffix():
    enc = {"encoder": "transformer", "encoder_conf": {"num_layers": 4}}
    results = {
        "dt_reg_kl": {"frontend": "wav_cnn", **enc},
        "dt_reg": {"frontend": "wav_cnn", **enc},
        "dt_reg_fbank": {"frontend": "fbank", **enc},
        "other_fbank": {"frontend": "fbank", **enc},
        "deep_fbank": {"frontend": "fbank", "encoder": "transformer", "encoder_conf": {"num_layers": 12}},
    }
    assert wav_cnn_twin("dt_reg_fbank", results) == "dt_reg"  # not the first with its encoder
    assert wav_cnn_twin("other_fbank", results) == "dt_reg_kl"  # no namesake: the first
    assert wav_cnn_twin("deep_fbank", results) is None


def test_macs_of_a_pruned_student_count_its_kept_heads_and_units_only():
    """A layer without attention or FFN (a pruned student's) outputs its bias: no MACs, and no autograd view
    of a parameter (the FLOP counter's module hooks reject one made under no_grad)."""
    from espnet_distill.frontend.fbank import FbankFrontend
    from espnet_distill.student.encoder import TransformerStudentEncoder

    conf = dict(output_size=32, num_layers=2, attention_heads=4, ffn_dim=64, pos_conv_kernel=8, pos_conv_groups=4)
    frontend = FbankFrontend(output_dim=32).eval()
    full = TransformerStudentEncoder(32, **conf).eval()
    pruned = TransformerStudentEncoder(32, **conf, layer_heads=[0, 4], layer_ffn_dims=[64, 0]).eval()
    mel_frames = 1 + (16000 - 400) // 160  # 1 s; then a stride-2 convolution of kernel 3, padding 1
    frames = (mel_frames - 1) // 2 + 1
    projections = frames * 32 * 32 * 4  # q, k, v, out (the CPU's attention kernel is not counted: both have it)
    ffn = 2 * frames * 32 * 64
    assert macs_per_second(frontend, full, 1.0) - macs_per_second(frontend, pruned, 1.0) == projections + ffn
