"""egs/librispeech/asr1: data prep on a miniature LibriSpeech + Libri-Light tree, and its configs at paper scale."""

import os
import shutil
from pathlib import Path

import pytest
import soundfile
import torch
import yaml

from espnet_distill.bin.model_size import distill_model_size
from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.data.librispeech import LIBRILIGHT_DATA_DIRS, LIBRILIGHT_FOLDS_1H, LIBRISPEECH_SUBSETS
from espnet_distill.data.validate import validate_data_dir
from espnet_distill.distill.export import build_student
from espnet_distill.features.fbank import FbankOptions
from espnet_distill.tasks.asr import ASRTask
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

RECIPE = REPO_ROOT / "egs" / "librispeech" / "asr1"
LIBRILIGHT_FOLDS = LIBRILIGHT_FOLDS_1H + ("9h/clean", "9h/other")
DATA_DIRS = [
    "train_960",
    "train_clean_100",
    "dev_clean",
    "dev_other",
    "test_clean",
    "test_other",
    "train_10h",
    "train_1h",
]


def run(cmd, cwd, env_extra=None, check=True):
    import subprocess

    env = {**os.environ, "ESPNET_DISTILL_ROOT": str(REPO_ROOT), **(env_extra or {})}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def corpora(tiny_corpus, tmp_path_factory):
    """LibriSpeech's 7 subsets and Libri-Light's 14 folds, 2 FLAC utterances each, from mini-corpus audio."""
    root = tmp_path_factory.mktemp("corpora")
    wav = read_kaldi_map(tiny_corpus["data"] / "train" / "wav.scp")
    text = read_kaldi_map(tiny_corpus["data"] / "train" / "text")
    sources = iter(wav)
    subsets = [root / "LibriSpeech" / s for s in LIBRISPEECH_SUBSETS]
    subsets += [root / "librispeech_finetuning" / f for f in LIBRILIGHT_FOLDS]
    for k, subset in enumerate(subsets):
        speaker, chapter = 100 + k, 5000 + k
        chapter_dir = subset / str(speaker) / str(chapter)
        chapter_dir.mkdir(parents=True)
        lines = []
        for n in range(2):
            source = next(sources)
            utt = f"{speaker}-{chapter}-{n:04d}"
            samples, rate = soundfile.read(wav[source], dtype="int16")
            soundfile.write(str(chapter_dir / f"{utt}.flac"), samples, rate, format="FLAC")
            lines.append(f"{utt} {text[source]}\n")
        (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def recipe(corpora, tmp_path_factory):
    """The recipe copied (symlinks resolved), run to stage 2 on the miniature tree."""
    target = tmp_path_factory.mktemp("librispeech") / "asr1"
    shutil.copytree(RECIPE, target, symlinks=False, ignore=shutil.ignore_patterns("data", "fbank", "exp", "downloads"))
    env = {"LIBRISPEECH": str(corpora), "LIBRILIGHT": str(corpora)}
    result = run(["./run.sh", "--stop_stage", "2", "--nj", "2"], target, env)
    return target, result, env


def test_stages_1_2_on_a_miniature_tree_give_validated_data_dirs_and_features(recipe, corpora):
    target, result, env = recipe
    data = target / "data"
    counts = {d: validate_data_dir(data / d, check_audio=True)["utterances"] for d in DATA_DIRS}
    assert counts == {
        "train_960": 6,
        "train_clean_100": 2,
        "dev_clean": 2,
        "dev_other": 2,
        "test_clean": 2,
        "test_other": 2,
        "train_10h": 28,
        "train_1h": 24,
    }
    # The joins: 960 h is the three training subsets; 10 h is 1 h (six folds of 10 min) plus 9 h.
    assert set(read_kaldi_map(data / "train_960" / "wav.scp")) >= set(
        read_kaldi_map(data / "train_clean_100" / "wav.scp")
    )
    assert set(read_kaldi_map(data / "train_10h" / "wav.scp")) > set(read_kaldi_map(data / "train_1h" / "wav.scp"))
    assert len(LIBRILIGHT_DATA_DIRS["train_10h"]) == 14
    # Audio stays in place, referenced from wav.scp.
    wav = read_kaldi_map(data / "dev_other" / "wav.scp")
    assert all(Path(p).is_absolute() and Path(p).is_relative_to(corpora) and p.endswith(".flac") for p in wav.values())
    utt = next(iter(wav))
    samples, rate = read_audio(utt, wav[utt])
    assert rate == 16000 and samples.size > 0
    # Stage 2: features of --feats_sets only, with the CMVN statistics of --cmvn_set.
    for dset in ("train_clean_100", "dev_clean"):
        validate_data_dir(data / dset, need_feats=True, feat_dim=80)
    assert (data / "train_clean_100" / "feats_stats.npz").is_file()
    assert not (data / "train_960" / "feats.scp").exists()
    FbankOptions(**yaml.safe_load((target / "conf" / "fbank.yaml").read_text()))
    # A rerun does nothing.
    again = run(["./run.sh", "--stop_stage", "2", "--nj", "2"], target, env)
    assert "LibriSpeech data dirs: data: skip: up to date" in again.stdout


def test_missing_corpora_and_teacher_say_what_to_put_where(recipe, tmp_path):
    target, _, env = recipe
    result = run(
        ["./run.sh", "--stop_stage", "1"], target, {**env, "LIBRISPEECH": str(tmp_path / "nowhere")}, check=False
    )
    assert result.returncode == 1
    assert "no LibriSpeech under LIBRISPEECH=" in result.stdout and "https://www.openslr.org/12" in result.stdout
    result = run(
        ["./run.sh", "--stop_stage", "1"], target, {**env, "LIBRILIGHT": str(tmp_path / "nowhere")}, check=False
    )
    assert result.returncode == 1 and "librispeech_finetuning.tgz" in result.stdout
    result = run(
        ["./run.sh", "--stage", "4", "--stop_stage", "4"],
        target,
        {**env, "HUBERT_BASE": str(tmp_path / "hubert_base_ls960.pt")},
        check=False,
    )
    assert result.returncode == 1
    assert f"--teacher_path '{tmp_path / 'hubert_base_ls960.pt'}' does not exist" in result.stdout
    # The LM corpus (stage 6, --use_lm true by default here): named, with where to get it.
    result = run(
        ["./run.sh", "--stage", "6", "--stop_stage", "6"],
        target,
        {**env, "LIBRISPEECH_LM": str(tmp_path / "librispeech-lm-norm.txt.gz")},
        check=False,
    )
    assert result.returncode == 1
    assert f"--lm_train_text {tmp_path / 'librispeech-lm-norm.txt.gz'} does not exist" in result.stdout
    assert "README" in result.stdout and not (target / "exp" / "lm_char").exists()


def test_gpu_commands_without_a_gpu_stop_before_any_work(recipe):
    """The README's GPU commands, as written, on a machine without a GPU: one clear error, nothing run."""
    target, _, env = recipe
    env = {**env, "CUDA_VISIBLE_DEVICES": ""}  # on a GPU machine too, no device is visible
    for command, ngpu in [
        (["./run.sh"], 1),
        (["./run.sh", "--stage", "5", "--ngpu", "4"], 4),
        (["./run.sh", "--distill_configs", "all"], 1),
    ]:
        result = run(command, target, env, check=False)
        assert result.returncode == 1, command
        message = result.stdout + result.stderr
        assert f"--ngpu {ngpu}: no CUDA device is visible" in message and "--ngpu 0" in message, message
        assert "Stage 1" not in result.stdout and "Stage 5" not in result.stdout, result.stdout
        assert "Traceback" not in message
    # The CPU stages still run with the recipe's default --ngpu 1.
    result = run(["./run.sh", "--stop_stage", "2", "--nj", "2"], target, env)
    assert "Successfully finished" in result.stdout


def test_dphubert_prunes_then_distills_again_on_the_miniature_tree(recipe, tiny_teacher_path):
    """Stage 5 with DPHuBERT's configs (a few steps on CPU, a 3-layer teacher standing for HuBERT Base): the
    pruning run first (gates, the size term, each step's sizes logged), then its final distillation from the
    pruned student."""
    target, _, env = recipe
    steps = "--max_epoch 1 --num_iters_per_epoch 3 --batch_bins 200000 --num_workers 0 --use_amp false"
    # The teacher has 3 layers: its states 0 and 3 stand for HuBERT Base's 0, 4, 8 and 12.
    options = ["--ngpu", "0", "--teacher_format", "torchaudio", "--teacher_path", str(tiny_teacher_path)]
    run(["./run.sh", "--stage", "4", "--stop_stage", "4", *options], target, env)  # the teacher check
    options += ["--stop_stage", "5", "--distill_frontends", "wav_cnn fbank"]
    options += ["--distill_args", f"{steps} --head_conf student_layers=[0,3]"]
    # The README's command, on CPU and with a few steps.
    readme = ["./run.sh", "--stage", "5", "--distill_configs", "conf/distill/pruned_dphubert.yaml"]
    result = run([*readme, *options], target, env)
    assert result.stdout.count("distilling into") == 2 and "distilling into pruned_dphubert_fbank" not in result.stdout
    assert "a pruned student keeps the teacher's front-end (wav_cnn); not distilled with fbank" in result.stderr
    pruning = target / "exp" / "distill_prune_dphubert"
    config = yaml.safe_load((pruning / "config.yaml").read_text())
    prune = config["model_conf"]["prune_conf"]
    assert prune["units"] == ["conv", "heads", "ffn"] and prune["target_ratio"] == 0.25
    assert config["head_conf"] == {"student_layers": [0, 3], "identity_init": True}
    log = (pruning / "train.log").read_text()
    assert all(f"{key}=" in log for key in ("expected_params", "kept_params", "target_params", "lambda1"))
    start = yaml.safe_load((pruning / "student.yaml").read_text())
    assert len(start["encoder_conf"]["layer_heads"]) == 3 and len(start["frontend_conf"]["conv_layers"]) == 7
    final = yaml.safe_load((target / "exp" / "distill_pruned_dphubert" / "config.yaml").read_text())
    assert final["encoder_conf"]["layer_heads"] == start["encoder_conf"]["layer_heads"]
    assert not final["model_conf"].get("prune_conf") and final["init_student"] is None
    again = run([*readme, *options], target, env)
    assert "distilling into" not in again.stdout


EXPECTED = yaml.safe_load((RECIPE / "conf" / "expected_sizes.yaml").read_text())


DISTILL_CONFIGS = sorted((RECIPE / "conf" / "distill").glob("*.yaml"))
# The students of expected_sizes.yaml: each config with its own front-end, and each <config>_fbank listed.
STUDENTS = [(c.stem, c, None) for c in DISTILL_CONFIGS] + [
    (name, RECIPE / "conf" / "distill" / f"{name[: -len('_fbank')]}.yaml", "fbank")
    for name in EXPECTED["configs"]
    if name.endswith("_fbank")
]


def test_the_expected_sizes_name_the_recipes_students():
    assert sorted(name for name, _, _ in STUDENTS) == sorted(EXPECTED["configs"])
    assert all(config.is_file() for _, config, _ in STUDENTS)


@pytest.mark.parametrize("name, config, frontend", STUDENTS, ids=[name for name, _, _ in STUDENTS])
def test_every_distill_config_builds_at_the_documented_size(name, config, frontend, tmp_path):
    """Each student against ``conf/expected_sizes.yaml`` (the data file the recipe README's table shows)."""
    if frontend is not None:  # what stage 5's --frontend override builds: the config with that front-end
        data = yaml.safe_load(config.read_text())
        assert data["frontend"] != frontend
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({**data, "frontend": frontend}))
    size = distill_model_size(config, teacher="untrained", vocab_size=31)
    assert size["teacher_params"] == pytest.approx(EXPECTED["teacher"] * 1e6, rel=1e-3)
    assert name in EXPECTED["configs"], f"conf/expected_sizes.yaml has no size for {name}"
    expected = EXPECTED["configs"][name]
    assert (size["frontend"], size["layers"], size["width"], size["ffn"]) == (
        expected["frontend_type"],
        expected["layers"],
        expected["width"],
        expected["ffn"],
    )
    for key, measured in (
        ("student", "student_params"),
        ("frontend", "frontend_params"),
        ("heads", "distillation_head_params"),
        ("finetuned", "finetuned_params"),
        ("unpruned", "unpruned_params"),  # a pruning config's start (the teacher), and its target as "student"
    ):
        if expected.get(key) is None or size.get(measured) is None:
            assert expected.get(key) is None and size.get(measured) is None, key
        else:
            assert size[measured] == pytest.approx(expected[key] * 1e6, rel=0.02), key


def test_every_finetune_config_builds_a_ctc_model_on_a_student(tmp_path):
    size = distill_model_size(RECIPE / "conf" / "distill" / "deep_thin_reg_kl.yaml", vocab_size=31)
    student = tmp_path / "student"
    student.mkdir()
    frontend, encoder = build_student(size["description"])
    state = {
        **{f"frontend.{k}": v for k, v in frontend.state_dict().items()},
        **{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
    }
    torch.save(state, student / "student.pth")
    (student / "student.yaml").write_text(yaml.safe_dump(size["description"]))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "<space>", "'", *map(chr, range(65, 91)), "<sos/eos>"]) + "\n")
    configs = sorted((RECIPE / "conf" / "finetune").glob("*.yaml"))
    assert [c.stem for c in configs] == ["ctc_100h", "ctc_10h", "ctc_1h"]
    for config in configs:
        args = ASRTask.get_parser().parse_args(
            [
                "--config",
                str(config),
                "--token_list",
                str(tokens),
                "--token_type",
                "char",
                "--init_student",
                str(student),
                "--output_dir",
                str(tmp_path / config.stem),
            ]
        )
        model = ASRTask.build_model(args)
        assert sum(p.numel() for p in model.parameters()) == size["finetuned_params"]
        assert args.scheduler_conf["max_steps"] == args.max_epoch * args.num_iters_per_epoch
