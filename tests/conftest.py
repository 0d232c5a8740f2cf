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


def require_programs(*names: str) -> None:
    """Skip, saying so, when a program the test needs is not installed (tools/install.sh installs them)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/install.sh installs the Debian packages)")


@pytest.fixture(scope="session")
def sclite() -> None:
    """sclite (Debian's sctk) is installed, or the test is skipped saying so."""
    from espnet_distill.scoring.sclite import find_sclite

    try:
        find_sclite()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Dict[str, Path]:
    """The mini corpus at its tiny size: data dirs of train, train_10pct, dev, test (synthesized with
    espeak-ng and flite: skipped, saying so, without them)."""
    require_programs("espeak-ng", "flite")
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


TINY_TEACHER = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
    extractor_conv_bias=False,
    encoder_embed_dim=64,
    encoder_projection_dropout=0.0,
    encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4,
    encoder_num_layers=3,
    encoder_num_heads=4,
    encoder_attention_dropout=0.0,
    encoder_ff_interm_features=128,
    encoder_ff_interm_dropout=0.0,
    encoder_dropout=0.0,
    encoder_layer_norm_first=False,
    encoder_layer_drop=0.0,
    mask_prob=0.5,
    mask_selection="static",
    mask_other=0.0,
    mask_length=4,
    no_mask_overlap=False,
    mask_min_space=1,
    mask_channel_prob=0.0,
    mask_channel_selection="static",
    mask_channel_other=0.0,
    mask_channel_length=10,
    no_mask_channel_overlap=False,
    mask_channel_min_space=1,
    skip_masked=False,
    skip_nomask=False,
    num_classes=20,
    final_dim=16,
    feature_grad_mult=None,
)


@pytest.fixture(scope="session")
def tiny_teacher_path(tmp_path_factory) -> Path:
    """A random 3 x 64 post-LN, group-norm HuBERT with a 20-codeword head, in the torchaudio teacher format."""
    import torch
    from torchaudio.models import hubert_pretrain_model

    torch.manual_seed(0)
    model = hubert_pretrain_model(**TINY_TEACHER)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save({"config": TINY_TEACHER, "model": model.state_dict()}, path)
    return path


def tiny_batch(tiny_corpus, count: int = 3, data_set: str = "train"):
    """The first ``count`` utterances of a tiny set: padded float waveforms in [-1, 1] and lengths."""
    import torch

    from espnet_distill.data.audio import INT16_SCALE, read_audio
    from espnet_distill.data.kaldi_dir import read_kaldi_map

    waves = []
    for utt, spec in list(read_kaldi_map(tiny_corpus["data"] / data_set / "wav.scp").items())[:count]:
        samples, _ = read_audio(utt, spec)
        waves.append(torch.as_tensor(samples / INT16_SCALE, dtype=torch.float32))
    lengths = torch.tensor([len(w) for w in waves])
    return torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths
