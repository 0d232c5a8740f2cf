"""Pruning while distilling (model_conf.prune_conf) on ESPnet's trainer: logs, optimizer groups, export."""

import argparse
import subprocess

import pytest
import torch
import yaml

from espnet_distill.asr.build import build_ctc_model, ctc_args
from espnet_distill.distill.export import load_student
from espnet_distill.tasks.distill import DistillTask
from espnet_distill.utils.checkpoint import load_checkpoint, training_checkpoint_globals
from tests.conftest import tiny_batch
from tests.tasks.test_distill_task import TINY_TRAINING, data_args, distill_cmd, run_ok, shapes  # noqa: F401

pytestmark = pytest.mark.slow  # trains a model

PRUNE_CONFIG = {
    "frontend": "wav_cnn",
    "encoder": "transformer",
    "encoder_conf": {"preset": "teacher", "dropout": 0.0, "attention_dropout": 0.0},
    "init_from_teacher": ["frontend", "encoder"],
    "head": "layer_to_layer",
    "model_conf": {
        "prune_conf": {
            "units": ["heads", "ffn", "conv"],
            "target_preset": "deep_thin",
            "warmup_steps": 4,
            "reg_lr": 0.05,
        },
        "crop_samples": 32000,
    },
}


def test_pruning_logs_the_sizes_and_exports_the_pruned_student(tiny_corpus, shapes, tiny_teacher_path, tmp_path):  # noqa: F811
    config = tmp_path / "prune.yaml"
    config.write_text(yaml.safe_dump(PRUNE_CONFIG))
    exp = tmp_path / "exp"
    run_ok(
        distill_cmd(
            config,
            tiny_teacher_path,
            exp,
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--max_epoch",
            "2",
            "--num_iters_per_epoch",
            "4",
        )
    )
    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    prune = resolved["model_conf"]["prune_conf"]
    assert "target_preset" not in prune and prune["target_params"] > 0  # the deep-thin student's size, resolved
    state = load_checkpoint(exp / "latest.pth")
    assert any(k.startswith("pruning.gates.heads.") for k in state)
    assert float(state["pruning.lagrangian.lambda1"]) != 0.0  # the multipliers moved
    # The optimizer: the gates and the multipliers in a group of their own learning rate, without weight decay.
    model = DistillTask.build_model(argparse.Namespace(**{**resolved, "init_from_teacher": []}))
    optimizer = DistillTask.build_optimizers(argparse.Namespace(**resolved), model)[0]
    assert [g["lr"] for g in optimizer.param_groups] == [0.001, 0.05]
    reg = optimizer.param_groups[1]
    layers = resolved["encoder_conf"]["num_layers"]
    conv = len(resolved["frontend_conf"]["conv_layers"]) - 1
    assert len(reg["params"]) == 2 * layers + conv + 2 and reg["weight_decay"] == 0.0
    assert {id(p) for p in reg["params"]} == {id(p) for p in model.pruning.parameters()}
    # The export: the pruned student, its sizes in student.yaml, equal to the gated model in eval mode.
    frontend, encoder, description = load_student(exp)
    conf = description["encoder_conf"]
    assert len(conf["layer_heads"]) == len(conf["layer_ffn_dims"]) == layers
    model.load_state_dict(state)
    model.eval()
    assert description["params"]["total"] == model.pruning.kept_params()
    channels = [layer[0] for layer in description["frontend_conf"]["conv_layers"]]
    assert channels == model.pruning.frontend_gates.kept_channels()
    waves, lengths = tiny_batch(tiny_corpus, 2, "dev")
    with torch.no_grad():
        gated, _ = model.student_states(waves, lengths)
        feats, flens = frontend(waves, lengths)
        ours, _, _ = encoder(feats, flens)
    torch.testing.assert_close(ours, encoder.final_output(gated), atol=1e-4, rtol=1e-4)
    # Fine-tuning takes the pruned student as any other (--init_student: its structure and weights).
    args = ctc_args({"frontend": "wav_cnn", "encoder": "transformer"}, ["<blank>", "<unk>", "a", "<sos/eos>"])
    args.init_student = str(exp)
    ctc_model = build_ctc_model(args).eval()
    assert args.encoder_conf["layer_heads"] == conf["layer_heads"]
    with torch.no_grad():
        fine_tuned, _ = ctc_model.encode(waves, lengths)
    torch.testing.assert_close(fine_tuned, ours)
    # Each step logged the sizes: expected, kept, target (down to the final one after warmup_steps).
    reporter = load_checkpoint(exp / "checkpoint.pth", extra_globals=training_checkpoint_globals())["reporter"]
    train = reporter["stats"][reporter["epoch"]]["train"]
    assert {"expected_params", "kept_params", "lambda1", "lambda2", "size_penalty"} <= set(train)
    assert train["target_params"] == pytest.approx(prune["target_params"])
    assert train["expected_params"] < model.pruning.lagrangian.full_params


def test_a_pruned_student_is_distilled_again_from_its_dir(tiny_corpus, shapes, tiny_teacher_path, tmp_path):  # noqa: F811
    """DPHuBERT's final distillation: no gates, the pruned structure and weights as the start (--init_student)."""
    pruned_dir = tmp_path / "pruned"
    pruned_dir.mkdir()
    frontend_conf = {"dropout": 0.0}
    encoder_conf = {"preset": "teacher", "dropout": 0.0, "attention_dropout": 0.0}
    first = tmp_path / "prune.yaml"
    first.write_text(yaml.safe_dump({**PRUNE_CONFIG, "frontend_conf": frontend_conf, "encoder_conf": encoder_conf}))
    run_ok(
        distill_cmd(
            first,
            tiny_teacher_path,
            pruned_dir,
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--max_epoch",
            "1",
            "--num_iters_per_epoch",
            "3",
        )
    )
    final = tmp_path / "final.yaml"
    final.write_text(
        yaml.safe_dump(
            {
                "frontend": "wav_cnn",
                "encoder": "transformer",
                "encoder_conf": {"dropout": 0.0},
                "head": "layer_to_layer",
            }
        )
    )
    exp = tmp_path / "final"
    run_ok(
        distill_cmd(
            final,
            tiny_teacher_path,
            exp,
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--optim_conf",
            "lr=0.0",
            "--max_epoch",
            "1",
            "--num_iters_per_epoch",
            "2",
            "--init_student",
            str(pruned_dir),
        )
    )
    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    start = yaml.safe_load((pruned_dir / "student.yaml").read_text())["encoder_conf"]
    assert resolved["init_student"] is None and not resolved["model_conf"].get("prune_conf")
    assert resolved["encoder_conf"]["layer_heads"] == start["layer_heads"]
    _, before, _ = load_student(pruned_dir)
    _, after, _ = load_student(exp)
    for (name, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)  # learning rate 0: the pruned student's weights, loaded
    result = subprocess.run(
        distill_cmd(
            final,
            tiny_teacher_path,
            tmp_path / "both",
            "--init_student",
            str(pruned_dir),
            "--init_from_teacher",
            "encoder",
            "--dry_run",
            "true",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "--init_student and --init_from_teacher both initialise" in result.stderr
