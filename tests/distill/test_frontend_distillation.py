"""Front-end distillation: stage A trains the fbank front-end alone against the teacher's
projected CNN features; stage B is the full distillation; the swap is one command-line option
(``--frontend fbank`` after ``--config``, what the recipe's ``--distill_frontends fbank`` passes)."""

import numpy as np
import pytest
import torch
import yaml

from espnet_distill.distill.export import load_student
from espnet_distill.features.fbank import CMVNStats, FbankOptions, compute_fbank
from espnet_distill.tasks.distill import DistillTask
from tests.conftest import REPO_ROOT, tiny_batch
from tests.tasks.test_distill_task import TINY_TRAINING, data_args, distill_cmd, run_ok, shapes  # noqa: F401

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

# The recipe's Fbank student deep_thin_reg_kl_fbank: this config with --frontend fbank.
CONFIG = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/deep_thin_reg_kl.yaml"


# The recipes' configs that --distill_frontends swaps: all but the pruned students (a pruning run and the
# final distillation that starts from it keep the teacher's front-end).
def _swappable(path):
    data = yaml.safe_load(path.read_text())
    return not (data.get("model_conf") or {}).get("prune_conf") and not data.get("init_student")


DISTILL_CONFIGS = [path for path in sorted(REPO_ROOT.glob("egs/*/asr1/conf/distill/*.yaml")) if _swappable(path)]


@pytest.fixture(scope="module")
def fbank_stats(tiny_corpus, tmp_path_factory):
    waves, lengths = tiny_batch(tiny_corpus, 12)
    stats = CMVNStats(80)
    for i, n in enumerate(lengths.tolist()):
        stats.add(compute_fbank(waves[i, :n].numpy(), FbankOptions()).numpy())
    path = tmp_path_factory.mktemp("stats") / "feats_stats.npz"
    np.savez(path, count=stats.count, sum=stats.sum, sum_square=stats.sum_square)
    return path


def build(tiny_teacher_path, fbank_stats, frontend_steps):
    args = DistillTask.get_parser().parse_args(
        [
            "--teacher",
            "torchaudio",
            "--teacher_conf",
            f"path={tiny_teacher_path}",
            "--frontend",
            "fbank",
            "--frontend_conf",
            "dropout=0.0",
            "--fbank_stats",
            str(fbank_stats),
            "--encoder_conf",
            "preset=deep_thin",
            "--encoder_conf",
            "dropout=0.0",
            "--init_from_teacher",
            "frontend",
            "--head",
            "layer_to_layer",
            "--model_conf",
            f"frontend_steps={frontend_steps}",
            "--model_conf",
            "discriminative_weight=0.5",
            "--output_dir",
            "unused",
        ]
    )
    torch.manual_seed(0)
    return DistillTask.build_model(args)


def parsed_args(config, *extra):
    """distill_train's arguments from ``config`` and ``extra`` (all but the config's path)."""
    cmd = ["--config", str(config), "--teacher", "torchaudio", "--teacher_conf", "path=unused", "--output_dir", "o"]
    args = vars(DistillTask.get_parser().parse_args([*cmd, *extra]))
    del args["config"]
    return args


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_stage_a_trains_the_frontend_alone_then_stage_b_everything(tiny_teacher_path, fbank_stats, tiny_corpus):
    model = build(tiny_teacher_path, fbank_stats, frontend_steps=20)
    waves, lengths = tiny_batch(tiny_corpus, 4)
    optimizer = torch.optim.Adam([p for p in model.parameters()], lr=3e-3)
    target, _ = model.teacher.projected_features(waves, lengths)
    assert target.shape[-1] == model.teacher.hidden_size != model.frontend.output_size()  # through a linear map
    encoder_before, frontend_before = snapshot(model.encoder), snapshot(model.frontend)
    model.train()
    history = []
    for _ in range(20):
        loss, stats, _ = model(waves, lengths)
        assert set(stats) == {"l1_frontend", "loss"}
        history.append(float(stats["l1_frontend"]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert history[-1] < 0.8 * history[0], history
    assert changed(frontend_before, model.frontend) and not changed(encoder_before, model.encoder)
    assert int(model.num_updates) == 20
    # Step 21 is stage B: the full loss, and the encoder trains.
    loss, stats, _ = model(waves, lengths)
    assert {"regression", "discriminative", "l1_layer1"} <= set(stats) and "l1_frontend" not in stats
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert changed(encoder_before, model.encoder)
    # Validation computes stage B's loss whatever the step.
    fresh = build(tiny_teacher_path, fbank_stats, frontend_steps=20).eval()
    with torch.no_grad():
        assert "regression" in fresh(waves, lengths)[1]


def test_fbank_needs_statistics_and_a_copied_frontend_skips_stage_a(tiny_teacher_path, fbank_stats):
    args = DistillTask.get_parser().parse_args(
        [
            "--teacher",
            "torchaudio",
            "--teacher_conf",
            f"path={tiny_teacher_path}",
            "--frontend",
            "fbank",
            "--output_dir",
            "unused",
        ]
    )
    with pytest.raises(ValueError, match="--fbank_stats"):
        DistillTask.build_model(args)
    args = DistillTask.get_parser().parse_args(
        [
            "--teacher",
            "torchaudio",
            "--teacher_conf",
            f"path={tiny_teacher_path}",
            "--init_from_teacher",
            "frontend",
            "--model_conf",
            "frontend_steps=50",
            "--output_dir",
            "unused",
        ]
    )
    model = DistillTask.build_model(args)
    assert model.frontend_steps == 0 and model.frontend_head is None and args.model_conf["frontend_steps"] == 0


def test_swapped_config_distills_and_exports_an_fbank_student(
    tiny_corpus,
    shapes,  # noqa: F811  (the fixture)
    tiny_teacher_path,
    fbank_stats,
    tmp_path,
):
    # Every Fbank student of the recipes is a wav_cnn config with --frontend fbank after --config: the
    # override wins over the YAML, and gives exactly the arguments of that config with "frontend: fbank".
    assert len(DISTILL_CONFIGS) == 8
    for config in DISTILL_CONFIGS:
        data = yaml.safe_load(config.read_text())
        assert data["frontend"] == "wav_cnn"
        twin = tmp_path / "twins" / config.parent.parts[-4] / config.name
        twin.parent.mkdir(parents=True, exist_ok=True)
        twin.write_text(yaml.safe_dump({**data, "frontend": "fbank"}))
        overridden = parsed_args(config, "--frontend", "fbank")
        assert overridden["frontend"] == "fbank" and overridden == parsed_args(twin)
    exp = tmp_path / "exp"
    result = run_ok(
        distill_cmd(
            CONFIG,
            tiny_teacher_path,
            exp,
            "--frontend",
            "fbank",
            *data_args(tiny_corpus, shapes),
            *TINY_TRAINING,
            "--fbank_stats",
            str(fbank_stats),
            "--model_conf",
            "frontend_steps=3",
            "--max_epoch",
            "2",
            "--num_iters_per_epoch",
            "3",
        )
    )
    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    assert resolved["frontend"] == "fbank" and resolved["frontend_conf"]["stats_file"] == str(fbank_stats)
    assert resolved["config"] == str(CONFIG)
    epochs = [line for line in result.stderr.splitlines() if "epoch results" in line]
    assert len(epochs) == 2
    train_stats = [line.split("[train]")[1].split("[valid]")[0] for line in epochs]
    assert "l1_frontend" in train_stats[0] and "regression" not in train_stats[0]  # epoch 1: stage A
    assert "l1_frontend" not in train_stats[1] and "regression" in train_stats[1]  # epoch 2: stage B
    frontend, encoder, description = load_student(exp)
    assert description["frontend"] == "fbank"
    stats = np.load(fbank_stats)
    np.testing.assert_allclose(frontend.cmvn_mean.numpy(), stats["sum"] / stats["count"], rtol=1e-5)
    waves, lengths = tiny_batch(tiny_corpus, 2, "dev")
    with torch.no_grad():
        out, frames = encoder(*frontend(waves, lengths))[:2]
    assert out.shape[-1] == description["encoder_conf"]["output_size"] and frames.tolist() == [
        1 + (n - 400) // 320 for n in lengths.tolist()
    ]
