"""The stored-targets benchmark: both steps timed, the storage and crop-edge figures, JSON that parses."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # builds HuBERT Base and a paper-scale student


def test_the_paper_scale_command_runs_at_a_tiny_size(tmp_path):
    command = ["python", "-m", "espnet_distill.benchmark.stored_targets", "--distill_config", "egs/librispeech/asr1/conf/distill/deep_thin_reg_kl.yaml", "--teacher", "untrained", "--utts", "4", "--seconds", "15.625", "--threads", "2", "--repeats", "2"]  # noqa: E501  # fmt: skip
    tiny = ["--utts", "2", "--seconds", "1.5", "--repeats", "1", "--json", str(tmp_path / "figures.json")]
    result = subprocess.run(
        [sys.executable, *command[1:], *tiny], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert set(figures["step_seconds"]) == {"on the fly", "stored"} and all(
        v > 0 for v in figures["step_seconds"].values()
    )
    # HuBERT Base, the deep-thin student's 12 layers mapped one to one: the teacher's 12 layers, 504 codewords
    assert figures["stored"]["layers"] == list(range(1, 13))
    assert figures["stored"]["names"] == ["teacher_hidden", "teacher_logits"]  # the CNN is copied: no stage A
    rows = {row["what"]: row for row in figures["storage"]}
    layers = rows["12 layers x 768, float16"]
    assert layers["bytes_per_frame"] == 12 * 768 * 2 and abs(layers["gb_per_hour"] - 12 * 768 * 2 * 180000 / 1e9) < 1e-9
    # measured: 74 frames in 1.5 s (the CNN drops the last partial frame) against 75 per 1.5 s of the hour
    assert abs(rows["measured teacher_hidden.npy"]["gb_per_hour"] / layers["gb_per_hour"] - 74 / 75) < 1e-3
    edges = figures["crop_edges"]  # two 1.5 s utterances of one length: no crop
    assert edges == {}
    assert "| on the fly |" in result.stdout and "TB for 960 h" in result.stdout
