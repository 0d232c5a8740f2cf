"""egs/mini_synth/asr1 at the tiny corpus size, in a temporary copy: data, features, teacher, distillation."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.data.validate import validate_data_dir
from espnet_distill.distill.export import load_student
from espnet_distill.features.fbank import FbankOptions
from espnet_distill.teacher import load_teacher
from espnet_distill.utils.checkpoint import load_checkpoint, preferred_model_file
from tests.bin.test_model_commands import loading_commands
from tests.conftest import REPO_ROOT, write_wav
from tests.features.kaldi_reference import compare_with_kaldi

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

SETS = ("train", "train_10pct", "dev", "test")


def run(cmd, cwd, check=True):
    if cmd[0] == "./run.sh":  # the tests pretrain a tiny teacher (stages 3-4) instead of using the released one
        cmd = [cmd[0], "--teacher_format", "", *cmd[1:]]
    env = {**os.environ, "ESPNET_DISTILL_ROOT": str(REPO_ROOT)}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """The recipe copied (symlinks resolved) and run to stage 2 at the tiny size."""
    target = tmp_path_factory.mktemp("recipe") / "asr1"
    shutil.copytree(
        REPO_ROOT / "egs" / "mini_synth" / "asr1",
        target,
        symlinks=False,
        ignore=shutil.ignore_patterns("data", "fbank", "exp", "downloads"),
    )
    result = run(["./run.sh", "--stop_stage", "2", "--nj", "2", "--local_data_opts", "--size tiny --nj 2"], target)
    return target, result


def test_stages_1_2_produce_valid_data_dirs_and_features(recipe):
    target, result = recipe
    assert "Successfully finished" in result.stdout
    opts = FbankOptions()
    for name in SETS:
        data = target / "data" / name
        validate_data_dir(data, need_feats=True, check_audio=True, feat_dim=80)
        wav_scp = read_kaldi_map(data / "wav.scp")
        frames = read_kaldi_map(data / "utt2num_frames")
        for utt, feats in kaldiio.load_scp(str(data / "feats.scp")).items():
            assert feats.shape == (int(frames[utt]), 80)
        assert (data / "feats_stats.npz").is_file() and (data / "cmvn.ark").is_file()
        assert list(kaldiio.load_scp(str(data / "feats.scp"))) == list(wav_scp)
    # The features agree with kaldi-native-fbank (see tests/features/kaldi_reference.py).
    test_feats = kaldiio.load_scp(str(target / "data" / "test" / "feats.scp"))
    for utt, path in read_kaldi_map(target / "data" / "test" / "wav.scp").items():
        samples, _ = read_audio(utt, path)
        diff = compare_with_kaldi(samples, test_feats[utt], opts)
        assert diff["knf_max"] < 1e-3 and diff["exact_max"] < 1e-3
    # Each stage logged to its own place, one log per job.
    assert len(list((target / "exp" / "data_prep" / "log").glob("synth.*.log"))) == 2
    assert len(list((target / "exp" / "make_fbank" / "test").glob("make_fbank.*.log"))) == 2


def test_rerun_does_nothing_and_keeps_outputs(recipe):
    target, _ = recipe
    feats = target / "data" / "train" / "feats.scp"
    before = feats.stat().st_mtime_ns
    result = run(["./run.sh", "--stop_stage", "2", "--nj", "2", "--local_data_opts", "--size tiny --nj 2"], target)
    assert "up to date" in result.stdout
    assert feats.stat().st_mtime_ns == before


def test_bad_wav_fails_the_stage_naming_the_utterance(recipe, tmp_path):
    target, _ = recipe
    bad = target / "data" / "bad"
    shutil.copytree(target / "data" / "dev", bad)
    for name in ("feats.scp", "utt2num_frames", "feats_stats.npz", "cmvn.ark"):
        (bad / name).unlink()
    wav_scp = read_kaldi_map(bad / "wav.scp")
    victim = list(wav_scp)[-1]
    write_wav(tmp_path / "stereo.wav", np.zeros((16000, 2)))
    wav_scp[victim] = str(tmp_path / "stereo.wav")
    (bad / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in wav_scp.items()))
    # The data-dir check reads audio headers and stops before any feature is written.
    result = run(["utils/make_fbank.sh", "data/bad", "exp/make_fbank/bad", "fbank/bad"], target, check=False)
    assert result.returncode != 0
    assert f"utterance '{victim}'" in result.stderr and "stereo.wav has 2 channels" in result.stderr
    assert not (bad / "feats.scp").exists() and not (target / "fbank" / "bad").exists()


def test_unknown_option_is_rejected(recipe):
    target, _ = recipe
    result = run(["./run.sh", "--stop-stage", "2", "--n_j", "3"], target, check=False)
    assert result.returncode == 2 and "unknown option --n_j" in result.stderr
    # A stage that is no integer, or a missing value, is an error before anything runs (not "Successfully finished").
    for args, message in [
        (["--stage", "abc"], "option --stage takes a non-negative integer, not 'abc'"),
        (["--stop_stage", "1.5"], "option --stop_stage takes a non-negative integer, not '1.5'"),
        (["--stage", "--stop_stage", "2"], "option --stage needs a value (got the option --stop_stage)"),
        (["--seed", "x"], "option --seed takes a non-negative integer, not 'x'"),
    ]:
        result = run(["./run.sh", *args], target, check=False)
        assert result.returncode == 2 and message in result.stderr, args
        assert "Successfully finished" not in result.stdout


@pytest.fixture(scope="module")
def teacher_stages(recipe, tmp_path_factory):
    """Stages 3-4 at the tiny size: k-means targets and a one-layer teacher pretrained for 6 steps."""
    target, _ = recipe
    confs = tmp_path_factory.mktemp("confs")
    tiny = confs / "pretrain_tiny.yaml"
    tiny.write_text(
        "conv_channels: 16\nencoder_layers: 1\nencoder_dim: 32\nencoder_heads: 2\nencoder_ffn: 64\n"
        "pos_conv_kernel: 8\npos_conv_groups: 2\nfinal_dim: 16\nmax_steps: 6\nvalid_interval: 3\n"
        "warmup_steps: 2\nbatch_seconds: 20.0\n"
    )
    kmeans = confs / "kmeans_tiny.yaml"
    kmeans.write_text("num_clusters: 10\n")
    options = ["--pretrain_config", str(tiny), "--kmeans_config", str(kmeans)]
    result = run(["./run.sh", "--stage", "3", "--stop_stage", "4", *options], target)
    return target, result, options


def test_teacher_stages_at_tiny_size(teacher_stages):
    target, result, options = teacher_stages
    assert "Successfully finished" in result.stdout
    teacher_yaml = yaml.safe_load((target / "exp" / "teacher" / "teacher.yaml").read_text())
    assert teacher_yaml["teacher"] == "torchaudio"
    path = Path(teacher_yaml["teacher_conf"]["path"])
    teacher = load_teacher(teacher_yaml["teacher"], path=str(target / path if not path.is_absolute() else path))
    assert teacher.num_layers == 1 and teacher.label_embeddings.shape == (10, 16)
    info = json.loads((target / "exp" / "teacher" / "teacher_info.json").read_text())
    assert info["num_codewords"] == 10 and info["hidden_size"] == 32
    assert "# Ended (code 0)" in (target / "exp" / "hubert_pretrain" / "log" / "hubert_pretrain.log").read_text()
    # The teacher learns from the unlabelled ssl set (pool + train): k-means labels every utterance of it.
    ssl = read_kaldi_map(target / "data" / "ssl" / "wav.scp")
    assert list(read_kaldi_map(target / "exp" / "hubert_kmeans" / "ssl" / "labels")) == list(ssl)
    assert any(utt.startswith("pool") for utt in ssl)
    # A rerun finds everything done.
    again = run(["./run.sh", "--stage", "3", "--stop_stage", "4", *options], target)
    assert again.stdout.count("skip: up to date") == 3  # k-means, pretraining, the teacher check
    assert "k-means targets of MFCC" not in again.stdout and "pretraining a HuBERT" not in again.stdout


SHORT_TRAINING = "--max_epoch 1 --num_iters_per_epoch 2 --batch_bins 200000 --num_workers 0"


@pytest.fixture(scope="module")
def distilled(teacher_stages):
    """Stage 5 at the tiny size, every config with both front-ends (run.sh's --distill_frontends), two steps each."""
    target, _, _ = teacher_stages
    result = run(
        ["./run.sh", "--stage", "5", "--stop_stage", "5", "--distill_configs", "all", "--distill_args", SHORT_TRAINING],
        target,
    )
    return target, result


def test_distillation_stage_runs_every_config_at_tiny_size(distilled):
    target, result = distilled
    configs = sorted(p.stem for p in (target / "conf" / "distill").glob("*.yaml"))
    pruning = ["prune_deep_thin_reg", "pruned_deep_thin_reg"]
    assert configs == ["deep_thin_reg", "deep_thin_reg_kl", *pruning, "shallow_wide_reg", "shallow_wide_reg_kl"]
    configs = [c for c in configs if c not in pruning]
    # Each config with each front-end, in that order: the Fbank students are the configs with the front-end
    # overridden on the command line, named <config>_fbank (the wav_cnn ones keep the config's name).  The
    # pruning run and its final distillation keep the teacher's front-end; the final one waits for its start.
    students = [
        (name, config, frontend)
        for config in configs
        for name, frontend in ((config, "wav_cnn"), (f"{config}_fbank", "fbank"))
    ]
    students = students[:4] + [("prune_deep_thin_reg", "prune_deep_thin_reg", "wav_cnn")] + students[4:]
    students.append(("pruned_deep_thin_reg", "pruned_deep_thin_reg", "wav_cnn"))
    distilling = [
        line.split("distilling into ")[1].split(" ")[0]
        for line in result.stdout.splitlines()
        if "distilling into" in line
    ]
    assert distilling == [name for name, _, _ in students]
    assert "(wav_cnn front-end, from exp/distill_prune_deep_thin_reg; log:" in result.stdout
    for name, config_name, frontend in students:
        exp = target / "exp" / f"distill_{name}"
        assert "# Ended (code 0)" in (exp / "train.log").read_text()
        student = yaml.safe_load((exp / "student.yaml").read_text())
        # presets scaled to the 1 x 32 teacher: shallow-wide at its width, deep-thin at 0.625 of it (one 40-dim
        # head); the pruned students at the teacher's, each layer's heads and FFN units stated
        width = 32 if name.startswith(("shallow", "prune")) else 40
        assert student["encoder_conf"]["output_size"] == width
        assert ("layer_heads" in student["encoder_conf"]) == name.startswith("prune")
        valid = json.loads((exp / "distill_summary.json").read_text())["final"]["valid"]
        assert ("discriminative" in valid) == ("_kl" in name)
        # The run.sh that resumes it distills the same student: its config and its front-end.
        run_sh = (exp / "run.sh").read_text()
        assert f"--distill_configs conf/distill/{config_name}.yaml --distill_frontends {frontend} " in run_sh
        assert student["frontend"] == frontend
        config_yaml = (exp / "config.yaml").read_text()
        assert f"\nfrontend: {frontend}\n" in config_yaml
        config = yaml.safe_load(config_yaml)
        assert config["frontend"] == frontend and config["config"] == f"conf/distill/{config_name}.yaml"
        assert config["train_data_path_and_name_and_type"] == [["data/ssl/wav.scp", "speech", "sound"]]
    # The Fbank students are their wav_cnn twins' configs with the front-end swapped, nothing else (beyond what
    # the task resolves from the front-end: its settings, stage A's frontend_steps and unused_parameters).
    for config_name in configs:
        twin = [
            yaml.safe_load((target / "exp" / f"distill_{n}" / "config.yaml").read_text())
            for n in (config_name, f"{config_name}_fbank")
        ]
        differ = {k for k in twin[0] if twin[0][k] != twin[1].get(k)}
        assert differ <= {"frontend", "frontend_conf", "model_conf", "unused_parameters", "output_dir"}, differ
        assert {k: v for k, v in twin[0]["model_conf"].items() if k != "frontend_steps"} == {
            k: v for k, v in twin[1]["model_conf"].items() if k != "frontend_steps"
        }
    # The Fbank student took its CMVN statistics from stage 2.
    stats = np.load(target / "data" / "train" / "feats_stats.npz")
    frontend, _, _ = load_student(target / "exp" / "distill_deep_thin_reg_kl_fbank")
    np.testing.assert_allclose(frontend.cmvn_mean.numpy(), stats["sum"] / stats["count"], rtol=1e-5)
    # The final distillation started from the pruned student's structure and weights (--init_student).
    start = yaml.safe_load((target / "exp" / "distill_prune_deep_thin_reg" / "student.yaml").read_text())
    final = yaml.safe_load((target / "exp" / "distill_pruned_deep_thin_reg" / "config.yaml").read_text())
    assert final["encoder_conf"]["layer_heads"] == start["encoder_conf"]["layer_heads"]
    assert final["frontend_conf"]["conv_layers"] == start["frontend_conf"]["conv_layers"]
    assert "expected_params" in (target / "exp" / "distill_prune_deep_thin_reg" / "train.log").read_text()
    assert result.stdout.count("distilling into") == 10
    # The console showed the jobs' progress (recipe/watch_progress) and no library noise; two waves.
    assert "Stage 5: 9 training job(s) done in" in result.stdout
    assert "Stage 5: 1 training job(s) done in" in result.stdout
    assert "Failed to import Flash Attention" not in result.stdout + result.stderr
    again = run(
        ["./run.sh", "--stage", "5", "--stop_stage", "5", "--distill_configs", "all", "--distill_args", SHORT_TRAINING],
        target,
    )
    assert (
        again.stdout.count("skip: up to date") == 10 + 2 and "distilling into" not in again.stdout
    )  # + 2 speech shapes
    # The run.sh left in an Fbank student's exp dir reruns that student alone, and finds it up to date.
    again = run([str(target / "exp" / "distill_deep_thin_reg_kl_fbank" / "run.sh")], target)
    assert (
        "distillation into deep_thin_reg_kl_fbank: exp/distill_deep_thin_reg_kl_fbank: skip: up to date" in again.stdout
    )
    assert again.stdout.count("distillation into") == 1 and "distilling into" not in again.stdout


def test_parallel_training_jobs_finish_the_others_and_name_the_failed_one(distilled):
    target, _ = distilled
    extra = target / "conf" / "distill_extra"
    extra.mkdir()
    shutil.copy(target / "conf" / "distill" / "deep_thin_reg.yaml", extra / "good.yaml")
    (extra / "broken.yaml").write_text("frontend: wav_cnn\nencoder: no_such_encoder\n")
    configs = "conf/distill_extra/broken.yaml conf/distill_extra/good.yaml"  # each with its own front-end
    result = run(
        [
            "./run.sh",
            "--stage",
            "5",
            "--stop_stage",
            "5",
            "--train_jobs",
            "2",
            "--distill_configs",
            configs,
            "--distill_frontends",
            "",
            "--distill_args",
            SHORT_TRAINING,
        ],
        target,
        check=False,
    )
    assert result.returncode == 1
    assert "failed: exp/distill_broken (see their train.log)" in result.stdout
    assert "no_such_encoder" in (target / "exp" / "distill_broken" / "train.log").read_text()
    assert not (target / "exp" / "distill_broken" / "student.pth").exists()
    assert (target / "exp" / "distill_good" / "student.pth").is_file()  # ran to the end beside the failure


def test_missing_real_teacher_says_what_to_put_where(recipe):
    target, _ = recipe
    result = run(
        [
            "./run.sh",
            "--stage",
            "4",
            "--stop_stage",
            "4",
            "--teacher_format",
            "fairseq",
            "--teacher_path",
            "/nonexistent/hubert_base_ls960.pt",
        ],
        target,
        check=False,
    )
    assert result.returncode == 1
    assert "--teacher_path '/nonexistent/hubert_base_ls960.pt' does not exist" in result.stdout
    assert "hubert_base_ls960.pt for fairseq" in result.stdout


def test_finetuning_decoding_scoring_and_results_at_tiny_size(distilled, teacher_stages):
    target, _ = distilled
    _, _, teacher_options = teacher_stages
    # Both front-ends: the wav_cnn student and its fbank swap, each distilled and from scratch.
    options = [
        "--finetune_args",
        SHORT_TRAINING,
        "--decode_sets",
        "test",
        "--nj",
        "2",
        "--distill_configs",
        "conf/distill/deep_thin_reg_kl.yaml",
        "--distill_frontends",
        "wav_cnn fbank",
        "--distill_args",
        SHORT_TRAINING,
        "--finetune_sets",
        "train",
    ]
    result = run(["./run.sh", "--stage", "6", "--stop_stage", "9", *options], target)
    models = [
        "teacher",
        "deep_thin_reg_kl",
        "scratch_deep_thin_reg_kl",
        "deep_thin_reg_kl_fbank",
        "scratch_deep_thin_reg_kl_fbank",
    ]
    for model in models:
        config = yaml.safe_load((target / "exp" / f"asr_{model}_train" / "config.yaml").read_text())
        assert config["frontend"] == ("fbank" if model.endswith("_fbank") else "wav_cnn")
    # From scratch means random weights, but the fbank front-end keeps the data's CMVN statistics.
    stats = np.load(target / "data" / "train" / "feats_stats.npz")
    scratch = load_checkpoint(target / "exp" / "asr_scratch_deep_thin_reg_kl_fbank_train" / "valid.cer_ctc.ave.pth")
    np.testing.assert_allclose(scratch["frontend.cmvn_mean"].numpy(), stats["sum"] / stats["count"], rtol=1e-5)
    for model in models:
        decode = target / "exp" / f"asr_{model}_train" / "decode_ctc_greedy" / "test"
        hyps = read_kaldi_map(decode / "text", allow_empty_value=True)
        assert list(hyps) == list(read_kaldi_map(target / "data" / "test" / "text"))
        for kind in ("wer", "cer"):
            assert {"ref.trn", "hyp.trn", "result.txt"} <= {p.name for p in (decode / f"score_{kind}").iterdir()}
        assert json.loads((decode / "score.json").read_text())["rtf"] > 0
    # Stage 9 benchmarks the teacher and both students, and RESULTS.md includes the table.
    bench = json.loads((target / "exp" / "benchmark" / "benchmark.json").read_text())
    assert list(bench["models"]) == ["teacher", "deep_thin_reg_kl", "deep_thin_reg_kl_fbank"]
    assert bench["models"]["deep_thin_reg_kl_fbank"]["wav_cnn_twin"] == "deep_thin_reg_kl"
    results = (target / "RESULTS.md").read_text()
    assert "## Size and speed" in results and "| deep_thin_reg_kl_fbank | fbank |" in results
    # The summary: one row per model, and the plots it links.
    assert "|deep_thin_reg_kl_fbank|distilled|fbank|reg + KL|" in results and "|teacher|teacher|wav_cnn|-|" in results
    assert all(
        (target / "plots" / f"{p}.png").stat().st_size > 0
        for p in ("error_vs_params", "error_vs_rtf", "distill_losses")
    )
    assert "|dataset|params|fine-tuning set|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|RTF|" in results
    assert all(f"asr_{m}_train/decode_ctc_greedy/test" in results for m in models)
    assert results in result.stdout  # printed at the end
    # A rerun from stage 4 with the same options redoes nothing.
    again = run(["./run.sh", "--stage", "4", "--stop_stage", "9", *options, *teacher_options], target)
    assert "distilling into" not in again.stdout and "the teacher in the student format" not in again.stdout
    assert "front-end) on train (log:" not in again.stdout and "decoding test with" not in again.stdout
    assert "benchmark on" not in again.stdout and "## Size and speed" in again.stdout
    assert "run:" not in again.stdout
    # Stage 10 exports the student with the lower CER on --valid_set (here the decoded test set) to ONNX,
    # checks parity, scores every backend and times them; a rerun skips it.
    deploy = run(["./run.sh", "--stage", "10", "--stop_stage", "10", *options, "--valid_set", "test"], target)
    exported = [p.parent for p in (target / "exp" / "deploy").glob("*/model.json")]
    assert len(exported) == 1 and exported[0].name in ("deep_thin_reg_kl", "deep_thin_reg_kl_fbank")
    parity = json.loads((exported[0] / "model.json").read_text())["parity"]
    assert (
        parity["utterances"]
        == len(read_kaldi_map(target / "data" / "test" / "wav.scp"))
        == parity["identical_hypotheses"]
    )
    assert set(parity["cer"]) == {"pytorch", "onnx_fp32", "onnx_int8"} and parity["max_abs_diff"] < 1e-3
    report = json.loads((target / "exp" / "deploy" / "benchmark" / "deploy.json").read_text())
    backends = {f"{b}@{t}" for b in ("pytorch_fp32", "onnx_fp32", "onnx_int8") for t in (1, 4)}
    assert report["models"][0]["model"] == exported[0].name and set(report["models"][0]["rtf"]) == backends
    assert "| onnx_int8 |" in deploy.stdout
    # RESULTS.md gained the deployment tables: the int8 CER beside PyTorch's, and the timings.
    results = (target / "RESULTS.md").read_text()
    section = results.split("## Deployment (stage 10: ONNX export, int8)", 1)[1]
    assert f"| {exported[0].name} | {parity['utterances']} | {parity['cer']['pytorch']:.1f} |" in section
    assert "| onnx_int8 |" in section
    meta = json.loads((exported[0] / "model.json").read_text())
    assert meta["int8"]["static_convs"] >= 1 and meta["int8"]["calibration_utterances"] > 0  # calibrated on train
    again = run(["./run.sh", "--stage", "10", "--stop_stage", "10", *options, "--valid_set", "test"], target)
    assert "ONNX export of" not in again.stdout and "skip: up to date" in again.stdout


def test_a_pruned_student_goes_through_every_stage(distilled):
    """DPHuBERT's student (distilled by the `distilled` fixture: the pruning run, then the final distillation)
    fine-tuned, decoded, scored, benchmarked, exported to ONNX with int8, transcribed and decoded by ESPnet."""
    target, _ = distilled
    options = [
        "--finetune_args",
        SHORT_TRAINING,
        "--distill_args",
        SHORT_TRAINING,
        "--decode_sets",
        "test",
        "--nj",
        "2",
        "--distill_configs",
        "conf/distill/pruned_deep_thin_reg.yaml",
        "--distill_frontends",
        "",
        "--finetune_models",
        "distilled",
        "--finetune_sets",
        "train",
    ]
    # The benchmark takes the pruning run's student too (--benchmark_students: the study's final report).
    stages = ["--stage", "5", "--stop_stage", "9", "--benchmark_students", "prune_deep_thin_reg"]
    result = run(["./run.sh", *stages, *options], target)
    assert "distilling into" not in result.stdout  # the fixture distilled both
    # Stage 10 picks the student of lowest CER on --valid_set: here the decoded test set.
    run(["./run.sh", "--stage", "10", "--stop_stage", "10", *options, "--valid_set", "test"], target)
    exp = target / "exp" / "asr_pruned_deep_thin_reg_train"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    start = yaml.safe_load((target / "exp" / "distill_pruned_deep_thin_reg" / "student.yaml").read_text())
    assert config["encoder_conf"]["layer_heads"] == start["encoder_conf"]["layer_heads"]
    assert not (target / "exp" / "asr_prune_deep_thin_reg_train").exists()  # the start is not fine-tuned
    assert json.loads((exp / "decode_ctc_greedy" / "test" / "score.json").read_text())["rtf"] > 0
    bench = json.loads((target / "exp" / "benchmark" / "benchmark.json").read_text())
    assert [m for m in bench["models"] if m != "teacher"] == ["pruned_deep_thin_reg", "prune_deep_thin_reg"]
    # RESULTS.md shows what the gates kept: each convolution's channels, each layer's heads and FFN units.
    results = (target / "RESULTS.md").read_text()
    heads = " ".join(map(str, start["encoder_conf"]["layer_heads"]))
    assert "## Pruned students (DPHuBERT): what the gates kept" in results
    assert f"|pruned_deep_thin_reg|distilled again|{start['params']['total'] / 1e6:.2f} M|" in results
    assert f"|{heads}|" in results.split("|pruned_deep_thin_reg|distilled again|", 1)[1].splitlines()[0]
    deploy = target / "exp" / "deploy" / "pruned_deep_thin_reg"
    parity = json.loads((deploy / "model.json").read_text())["parity"]
    assert parity["max_abs_diff"] < 1e-3 and set(parity["cer"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    wav = next(iter(read_kaldi_map(target / "data" / "test" / "wav.scp").values()))
    for model in (["--model", str(deploy), "--int8", "true"], ["--model", str(exp)]):  # ONNX int8, PyTorch
        out = run(["python", "-m", "espnet_distill.bin.transcribe", *model, wav], target)
        assert out.stdout.strip().split(" ", 1)[0] == wav, out.stdout
    wav_scp = target / "data" / "test" / "wav.scp"
    decode_dir = target / "exp" / "pruned_espnet_decode"
    argv = loading_commands(exp, decode_dir, wav_scp, preferred_model_file(exp).name)["espnet_asr_inference"]
    espnet = ["python", "-m", "espnet_distill.bin.espnet_asr_inference", *map(str, argv)]
    run(espnet, target)
    hyps = read_kaldi_map(decode_dir / "1best_recog" / "text", allow_empty_value=True)
    assert list(hyps) == list(read_kaldi_map(wav_scp))


def test_superb_stage_evaluates_frozen_upstreams_on_asr_and_phonemes(distilled):
    """Stage 11 at the tiny size: fbank, the teacher and an untrained structure, frozen, on both tasks."""
    target, _ = distilled
    options = ["--nj", "2", "--distill_configs", "conf/distill/deep_thin_reg_kl.yaml", "--distill_frontends", "fbank"]
    run(["./run.sh", "--stage", "6", "--stop_stage", "6", *options], target)  # the character token list
    superb = [
        *options,
        "--valid_set",  # validated and decoded on the test set alone: one decoding per model
        "test",
        "--superb_tasks",
        "asr pr",
        "--superb_upstreams",
        "fbank teacher scratch",
        "--superb_args",
        SHORT_TRAINING,
    ]
    result = run(["./run.sh", "--stage", "11", "--stop_stage", "11", *superb], target)
    # The phoneme copies: the same utterances, espeak-ng's phones, and their token list.
    for dset in ("train", "test"):
        words, phones = (read_kaldi_map(target / "data" / d / "text") for d in (dset, f"{dset}_phn"))
        assert list(phones) == list(words) and all(len(phones[u].split()) > len(words[u].split()) for u in words)
        assert (target / "data" / f"{dset}_phn" / "wav.scp").read_text() == (
            target / "data" / dset / "wav.scp"
        ).read_text()
    phone_list = (target / "data" / "token_list" / "phn" / "tokens.txt").read_text().split()
    assert phone_list[:2] == ["<blank>", "<unk>"] and "ð" in phone_list and "A" not in phone_list
    student = yaml.safe_load((target / "exp" / "distill_deep_thin_reg_kl_fbank" / "student.yaml").read_text())
    # Hidden states: log-mel features are one; a model's are its first layer's input and each layer's output.
    states = {"fbank": 1, "teacher": 2, "random_deep_thin_reg_kl_fbank": student["encoder_conf"]["num_layers"] + 1}
    for task in ("asr", "pr"):
        for name, count in states.items():
            exp = target / "exp" / f"superb_{task}_{name}_seed1"
            config = yaml.safe_load((exp / "config.yaml").read_text())
            # SUPERB's downstreams: a BiLSTM for ASR, a frame-level linear layer for PR.
            assert config["frontend"] == "upstream" and config["encoder"] == ("linear" if task == "pr" else "blstm")
            assert config["token_type"] == ("word" if task == "pr" else "char")
            record = json.loads((exp / "layer_weights.json").read_text())
            assert len(record["weights"]) == count and abs(sum(record["weights"]) - 1) < 1e-4
            assert (record["upstream_params"] == 0) == (name == "fbank")
            score = json.loads((exp / "decode_ctc_greedy" / "test" / "score.json").read_text())
            assert 0 <= score["wer"]["err"] and score["wer"]["snt"] == len(
                read_kaldi_map(target / "data" / "test" / "text")
            )
            ref = (exp / "decode_ctc_greedy" / "test" / "score_wer" / "ref.trn").read_text()
            assert ("ð" in ref) == (task == "pr")  # PR is scored on phone tokens
    results = (target / "RESULTS.md").read_text()
    section = results.split("## SUPERB-style evaluation of frozen upstreams (stage 11)", 1)[1]
    # Its columns: ASR CER and PR PER on the valid and the first test set (both "test" here), ASR WER on test.
    assert "| upstream | params | ASR CER test | ASR CER test | ASR WER test | PR PER test | PR PER test |" in section
    assert (
        all(f"| {name} |" in section for name in states) and (target / "plots" / "superb_layer_weights.png").is_file()
    )
    assert "Stage 11 done" in result.stdout
    again = run(["./run.sh", "--stage", "11", "--stop_stage", "11", *superb], target)
    assert "training the" not in again.stdout and "decoding test with" not in again.stdout


def test_reruns_redo_exactly_what_changed(distilled, teacher_stages):
    """Touched files change nothing; an edited config or a changed extra argument redoes that step alone."""
    target, _ = distilled
    _, _, teacher_options = teacher_stages
    distill = ["./run.sh", "--stage", "5", "--stop_stage", "5", "--distill_configs", "all"]
    # Touch every upstream output and config without changing them: nothing is redone.
    for path in [
        *target.glob("conf/distill/*.yaml"),
        target / "data" / "train" / "wav.scp",
        target / "exp" / "teacher" / "teacher.yaml",
        target / "exp" / "hubert_pretrain" / "teacher.pt",
        *target.glob("exp/hubert_kmeans/*/labels"),
    ]:
        os.utime(path)
    again = run(["./run.sh", "--stage", "3", "--stop_stage", "4", *teacher_options], target)
    assert again.stdout.count("skip: up to date") == 3 and ": run: " not in again.stdout
    again = run([*distill, "--distill_args", SHORT_TRAINING], target)
    assert ": run: " not in again.stdout and "distilling into" not in again.stdout
    # An edited config redoes its students alone (with both front-ends), starting again (their old checkpoints
    # removed, their logs kept).
    config = target / "conf" / "distill" / "deep_thin_reg_kl.yaml"
    assert "\nseed: 1\n" in config.read_text()
    config.write_text(config.read_text().replace("\nseed: 1\n", "\nseed: 4\n"))
    again = run([*distill, "--distill_args", SHORT_TRAINING], target)
    redone = [line for line in again.stdout.splitlines() if "distillation into" in line and ": run: " in line]
    assert len(redone) == 2
    for line, name in zip(redone, ("deep_thin_reg_kl", "deep_thin_reg_kl_fbank")):
        assert f"exp/distill_{name}: run: config conf/distill/deep_thin_reg_kl.yaml changed" in line
    assert again.stdout.count("distilling into") == 2
    for name in ("deep_thin_reg_kl", "deep_thin_reg_kl_fbank"):
        exp = target / "exp" / f"distill_{name}"
        assert (exp / "train.log.1").is_file() and "# Ended (code 0)" in (exp / "train.log").read_text()
    # A changed extra argument redoes the step that takes it.
    one = ["./run.sh", "--stage", "5", "--stop_stage", "5", "--distill_configs", "conf/distill/deep_thin_reg.yaml"]
    one += ["--distill_frontends", "wav_cnn"]
    again = run([*one, "--distill_args", SHORT_TRAINING + " --patience 5"], target)
    assert (
        "exp/distill_deep_thin_reg: run: distill_args changed" in again.stdout
        and again.stdout.count("distilling into") == 1
    )
    # Stages 3-4: an edited k-means config reruns k-means; unchanged targets leave the teacher alone.
    kmeans_config = Path(teacher_options[teacher_options.index("--kmeans_config") + 1])
    kmeans_config.write_text(kmeans_config.read_text() + "# the same clustering\n")
    again = run(["./run.sh", "--stage", "3", "--stop_stage", "4", *teacher_options], target)
    assert "k-means targets: exp/hubert_kmeans: run: config" in again.stdout
    assert (
        "pretraining a HuBERT" not in again.stdout and "HuBERT pretraining: exp/hubert_pretrain: skip" in again.stdout
    )
    # An edited pretraining config retrains the teacher from the start, and the teacher is checked again.
    pretrain_config = Path(teacher_options[teacher_options.index("--pretrain_config") + 1])
    pretrain_config.write_text(pretrain_config.read_text().replace("max_steps: 6", "max_steps: 4"))
    again = run(["./run.sh", "--stage", "3", "--stop_stage", "4", *teacher_options], target)
    assert (
        "HuBERT pretraining: exp/hubert_pretrain: run: config" in again.stdout
        and "pretraining a HuBERT" in again.stdout
    )
    assert json.loads((target / "exp" / "hubert_pretrain" / "results.json").read_text())["step"] == 4
    assert "teacher check: exp/teacher: run: checkpoint exp/hubert_pretrain/teacher.pt changed" in again.stdout
