"""Shared fixtures: a tiny real corpus synthesized once per test session."""

import os
import shutil
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile

from espnet_distill.data import mini_synth

REPO_ROOT = Path(__file__).resolve().parents[1]
# Shell scripts under test call `python`: make it this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Dict[str, Path]:
    """The mini corpus at its tiny size: data dirs of train, train_10pct, dev, test."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    plan = mini_synth.plan_corpus(mini_synth.default_sentences(), size="tiny", seed=1)
    mini_synth.write_plan(plan, root / "plan")
    mini_synth.synthesize(root / "plan", root / "wav")
    mini_synth.write_data_dirs(root / "plan", root / "wav", root / "data", seed=1)
    return {"root": root, "data": root / "data", "wav": root / "wav", "plan": root / "plan"}


@pytest.fixture
def data_dir_copy(tiny_corpus, tmp_path) -> Path:
    """A writable copy of the tiny dev data dir (audio shared, read-only by convention)."""
    target = tmp_path / "dev"
    shutil.copytree(tiny_corpus["data"] / "dev", target)
    return target


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write int16 samples (1-D mono or 2-D frames x channels) to a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples, dtype=np.int16), rate, subtype="PCM_16")
    return path
