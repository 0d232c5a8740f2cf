"""Every command that the README, the recipe READMEs and docs/ show runs as written, at the tiny size.

The commands and how each is run are in ``tests/egs/documented_commands.py``.
The fast test holds that table to the documents; the slow ones run the
commands in a temporary copy of the recipes (the tiny corpus, two training
steps a model), in the order the documents give them.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile
import yaml

from espnet_distill.data.kaldi_dir import read_kaldi_map
from tests.conftest import REPO_ROOT
from tests.egs.documented_commands import (
    MINI,
    PLANS,
    covered_test_words,
    documented_commands,
    plans_by_where,
)


def test_every_documented_command_has_a_plan_and_every_plan_a_command():
    documented = {}
    for command in documented_commands():
        documented.setdefault(command.key, command)
    unplanned = [f"{c.doc}:{c.line}: {c.key}" for key, c in documented.items() if key not in PLANS]
    assert not unplanned, "documented commands no test runs (add them to tests/egs/documented_commands.py):\n" + (
        "\n".join(unplanned)
    )
    stale = [key for key in PLANS if key not in documented]
    assert not stale, f"planned commands that no document shows any more: {stale}"
    # The documents' own structure: a block that names exp/ runs in a recipe directory.
    for command in documented.values():
        if "exp/" in command.text or command.text.startswith("./"):
            assert command.cwd.startswith("egs/"), f"{command.doc}:{command.line}: no 'cd egs/...' before it"


def test_commands_covered_elsewhere_are_run_by_the_test_they_name():
    for (_, text), plan in PLANS.items():
        if plan.where != "covered":
            continue
        file, name = covered_test_words(plan)
        source = file.read_text(encoding="utf-8")
        assert f"def {name}(" in source, (plan.why, text)
        words = text.split()
        program = f'"./{Path(words[0]).name}"' if words[0].endswith(".sh") else f'"{words[0]}"'
        assert ", ".join([program, *(f'"{w}"' for w in words[1:])]) in source, (plan.why, text)


# --- running them ------------------------------------------------------------------------------------------


def _run(command: str, cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESPNET_DISTILL_ROOT": str(REPO_ROOT)}
    result = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{command} (in {cwd}) failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    assert "Traceback" not in result.stderr, f"{command}:\n{result.stderr}"
    return result


def _copy_recipes(root: Path) -> Path:
    """The mini recipe copied (symlinks resolved) to ``root/egs/mini_synth/asr1``, as in a checkout."""
    target = root / MINI
    shutil.copytree(
        REPO_ROOT / MINI, target, symlinks=False, ignore=shutil.ignore_patterns("data", "fbank", "exp", "downloads")
    )
    return target


def _recordings(recipe: Path, where: Path) -> None:
    """rec.wav, talk.flac and meeting.wav (the documents' placeholders) from the tiny test set's audio."""
    from espnet_distill.data.kaldi_dir import read_kaldi_map

    paths = list(read_kaldi_map(recipe / "data" / "test" / "wav.scp").values())
    for name, source in zip(("rec.wav", "talk.flac", "meeting.wav"), paths):
        samples, rate = soundfile.read(source, dtype="float32")
        soundfile.write(str(where / name), samples, rate)


def _check(text: str, result: subprocess.CompletedProcess, cwd: Path, recipe: Path, ran: Dict[str, float]) -> None:
    """What each command must have made (beyond exit status 0 and no traceback)."""
    out = result.stdout
    if text in ("egs/mini_synth/asr1/run.sh", "./run.sh") and "main" not in ran:
        assert "Successfully finished" in out
        teacher = yaml.safe_load((recipe / "exp" / "teacher" / "teacher.yaml").read_text())
        assert teacher["teacher_conf"]["path"].endswith("pretrained/hubert_mini.pt")  # the released teacher,
        sidecar = recipe / "pretrained" / "hubert_mini.pt.sha256"  # checked against the checksum beside it
        assert teacher["teacher_conf"]["sha256"] == sidecar.read_text().split()[0]
        assert (recipe / "RESULTS.md").is_file() and (recipe / "exp" / "deploy" / "benchmark" / "deploy.json").is_file()
        ran["main"] = (recipe / "exp" / "distill_deep_thin_reg_kl" / "student.pth").stat().st_mtime_ns
    elif text.startswith("./run.sh --stage") or text == "./run.sh":
        assert "Successfully finished" in out and "up to date" in out
        # Nothing was trained again.
        assert (recipe / "exp" / "distill_deep_thin_reg_kl" / "student.pth").stat().st_mtime_ns == ran["main"]
        if "--use_lm true" in text:  # the LM, its perplexity, and a student decoded without and with it
            assert json.loads((recipe / "exp" / "lm_char" / "perplexity.json").read_text())["perplexity"] > 1
            lm_text = {
                line.split(" ", 1)[1]
                for line in (recipe / "exp" / "lm_char" / "data" / "text").read_text().splitlines()
            }
            for dset in ("dev", "test"):  # no dev or test sentence leaked into the LM's text
                assert not lm_text & set(read_kaldi_map(recipe / "data" / dset / "text").values()), dset
            model = recipe / "exp" / "asr_deep_thin_reg_kl_train"
            record = json.loads((model / "decode_ctc_beam2_lm" / "lm_weight.json").read_text())
            assert set(record["errors"]) == {"0.0", "0.5"} and record["valid_set"] == "dev"
            assert (model / "decode_ctc_beam2" / "test" / "score.json").is_file()
    elif text == "./run.sh --help":
        assert "Usage:" in out + result.stderr and "--stop_stage" in out + result.stderr
    elif "bin.transcribe" in text:
        lines = out.strip().splitlines()
        files = [w for w in text.split() if w.endswith((".wav", ".flac"))]
        expected = sorted(p.name for p in cwd.glob("*.wav")) if "*.wav" in files else files
        assert len(lines) == len(expected), out
        if "--format json" in text:
            assert sorted(Path(json.loads(line)["file"]).name for line in lines) == expected
        else:
            assert [line.split(" ", 1)[0] for line in lines] == expected
    elif "bin.export_onnx" in text:
        out_dir = recipe / text.split()[4]
        assert (out_dir / "model.onnx").is_file() and (out_dir / "model.int8.onnx").is_file()
        assert json.loads((out_dir / "model.json").read_text())["parity"]
    elif "bin.pack_model" in text:
        with zipfile.ZipFile(recipe / text.split()[-1]) as archive:
            meta = yaml.safe_load(archive.read("meta.yaml"))
            assert ("lm_file" in meta["files"]) == ("--lm" in text), meta
    elif "bin.export_hf" in text:
        assert (recipe / text.split()[-1] / "config.json").is_file()
    elif "bin.espnet_asr_inference" in text:
        output_dir = text.split("--output_dir ", 1)[1].split()[0]
        hyps = (recipe / output_dir / "1best_recog" / "text").read_text()
        assert len(hyps.splitlines()) == len((recipe / "data" / "test" / "wav.scp").read_text().splitlines())
    elif "bin.teacher_codebook" in text:
        with np.load(recipe / "exp" / "teacher" / "codebook.npz") as codebook:
            assert max(a.shape[0] for a in codebook.values() if a.ndim == 2) == 100
    elif "bin.benchmark" in text:
        report = json.loads((recipe / "exp" / "benchmark" / "benchmark.json").read_text())
        assert sorted(report["models"]) == ["paper_deep_thin_fbank", "paper_deep_thin_wav_cnn", "paper_hubert_base"]
    elif "bin.asr_train" in text:
        assert list((recipe / "exp" / "asr_by_hand").glob("*.pth"))
    elif text.startswith("local/run_study.sh"):
        # The repeat: --repeat with its own front-end, --repeat_fbank with the Fbank one, each with its scratch twin.
        for model in ("deep_thin_reg_kl", "deep_thin_reg_kl_fbank"):
            for name in (model, f"scratch_{model}"):
                assert (recipe / "exp" / f"asr_{name}_seed2_train").is_dir(), name
        results = (recipe / "RESULTS.md").read_text()
        assert "seed" in results
        # Stage 11: the frozen upstreams of the plan (fbank, the teacher) under both downstreams, in the report.
        superb = results.split("## SUPERB-style evaluation of frozen upstreams (stage 11)", 1)[1]
        assert "| fbank |" in superb and "| teacher |" in superb
        assert (recipe / "exp" / "superb_pr_teacher_seed1" / "decode_ctc_greedy" / "test" / "score.json").is_file()
        # The low-resource run: the student's phone recognizer trained on train_10pct, in a table of its own.
        low = recipe / "exp" / "superb_pr_deep_thin_reg_kl_seed1_train_10pct"
        assert (low / "decode_ctc_greedy" / "test" / "score.json").is_file()
        assert "train_10pct" in (low / "config.yaml").read_text()
        low_table = superb.split("Downstreams trained on train_10pct:", 1)[1]
        assert "| deep_thin_reg_kl |" in low_table.split("\n\n")[1]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mini recipe copy after the documents' commands that need no other teacher, in their order."""
    root = tmp_path_factory.mktemp("checkout")
    recipe = _copy_recipes(root)
    ran: Dict[str, float] = {}
    for command, plan in plans_by_where("mini"):
        cwd = root / command.cwd
        if "bin.transcribe" in command.text and not (cwd / "rec.wav").exists():
            _recordings(recipe, cwd)
        result = _run(plan.command(command.text, {}), cwd)
        _check(command.text, result, cwd, recipe, ran)
    return root, recipe


@pytest.mark.slow
def test_the_documents_commands_run_as_written_on_the_tiny_recipe(mini):
    root, recipe = mini
    # Every command of the scenario ran (the fixture checks each); the user's view of the run:
    assert (recipe / "exp" / "asr_by_hand").is_dir() and (recipe / "packed" / "deep_thin_reg_kl.zip").is_file()


@pytest.mark.slow
def test_the_studys_commands_run_at_the_tiny_size(mini):
    root, recipe = mini
    ran = {"main": (recipe / "exp" / "distill_deep_thin_reg_kl" / "student.pth").stat().st_mtime_ns}
    for command, plan in plans_by_where("mini_study"):
        result = _run(plan.command(command.text, {}), root / command.cwd)
        _check(command.text, result, root / command.cwd, recipe, ran)


@pytest.mark.slow
def test_a_users_teacher_in_another_format_runs_through_the_recipe(mini, tmp_path):
    from tests.egs.teacher_files import write_fairseq_teacher

    root, recipe = mini
    teacher = write_fairseq_teacher(recipe / "pretrained" / "hubert_mini.pt", tmp_path / "hubert_base_ls960.pt")
    score = recipe / "exp" / "asr_deep_thin_reg_kl_train" / "decode_ctc_greedy" / "test" / "score.json"
    before = score.stat().st_mtime_ns  # the released teacher's, from the fixture's run
    for command, plan in plans_by_where("mini_user_teacher"):
        result = _run(plan.command(command.text, {"fairseq_teacher": str(teacher)}), root / command.cwd)
        assert "Successfully finished" in result.stdout
    teacher_yaml = yaml.safe_load((recipe / "exp" / "teacher" / "teacher.yaml").read_text())
    assert teacher_yaml["teacher"] == "fairseq" and teacher_yaml["teacher_conf"]["path"] == str(teacher)
    assert "sha256" not in teacher_yaml["teacher_conf"]  # not the released one's
    assert score.stat().st_mtime_ns > before  # distilled, fine-tuned and scored again from the new teacher


@pytest.mark.slow
def test_a_data_only_run_with_another_seed(tmp_path):
    root = tmp_path / "checkout"
    recipe = _copy_recipes(root)
    ((command, plan),) = plans_by_where("mini_seed3")
    result = _run(plan.command(command.text, {}), root / command.cwd)
    assert "Successfully finished" in result.stdout
    assert (recipe / "data" / "train" / "feats.scp").is_file() and not (
        recipe / "exp" / "distill_deep_thin_reg_kl"
    ).exists()


@pytest.mark.slow
def test_the_test_command_installs_and_collects_every_test():
    ((command, plan),) = plans_by_where("repo")
    result = _run(plan.command(command.text, {}), REPO_ROOT)
    assert "error" not in result.stdout.lower().split("collected")[-1]
    assert " tests collected" in result.stdout or "collected" in result.stdout
