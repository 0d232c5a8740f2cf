"""What every reader of a data dir's audio hands a model: :func:`read_audio`'s float32 samples in [-1, 1],
never samples at int16 scale; only Kaldi features take int16 scale (``features.fbank.kaldi_waveform``),
and they equal Kaldi's.

The file is full scale (-32768 and 32767 both occur), so a reader that handed a model int16-scaled
samples, or one that scaled them twice, fails here; the models are stand-ins that record their input.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from espnet_distill.data.audio import read_audio
from espnet_distill.features.fbank import FbankOptions, compute_fbank
from tests.conftest import write_wav
from tests.features.kaldi_reference import compare_with_kaldi

NUM_SAMPLES = 16000


@pytest.fixture
def full_scale(tmp_path):
    """A data dir of one full-scale utterance ``u1``, and its int16 samples."""
    ramp = np.arange(-32768, 32768, 5)  # -32768 ... 32767
    samples = np.concatenate([ramp, np.random.default_rng(0).integers(-32768, 32768, NUM_SAMPLES - len(ramp))])
    assert samples.min() == -32768 and samples.max() == 32767
    path = write_wav(tmp_path / "wav" / "u1.wav", samples)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {path}\n")
    return data, samples.astype(np.int16)


def in_minus_one_to_one(received, samples: np.ndarray) -> None:
    """``received`` is exactly the int16 ``samples`` / 32768 in float32, so within [-1, 1]."""
    received = np.asarray(received)
    assert received.dtype == np.float32 and np.abs(received).max() <= 1.0
    np.testing.assert_array_equal(received.reshape(-1), samples.astype(np.float32) / 32768)


class RecordingTeacher:
    """A teacher's interface (one layer), recording the waveforms it is given."""

    num_layers, hidden_size = 1, 4

    def __init__(self) -> None:
        self.inputs = []
        self.model = torch.nn.Linear(1, 1)

    def __call__(self, wave: torch.Tensor) -> SimpleNamespace:
        self.inputs.append(wave.clone())
        frames = torch.zeros(1, 1 + (wave.shape[1] - 400) // 320, self.hidden_size)
        return SimpleNamespace(
            hidden_states=[frames, frames], codeword_logits=None, lengths=torch.tensor([frames.shape[1]])
        )


def test_the_reader_gives_full_scale_int16_as_floats_in_minus_one_to_one(full_scale):
    data, samples = full_scale
    read, _ = read_audio("u1", str(data.parent / "wav" / "u1.wav"))
    in_minus_one_to_one(read, samples)
    assert read.min() == -1.0


def test_kaldi_features_of_the_samples_read_equal_kaldis(full_scale):
    """compute_fbank scales the samples to int16 range itself: its features equal kaldi-native-fbank's of the
    integer samples (the reference scales on its own)."""
    data, samples = full_scale
    read, _ = read_audio("u1", str(data.parent / "wav" / "u1.wav"))
    diff = compare_with_kaldi(read, compute_fbank(read, FbankOptions()).numpy(), FbankOptions())
    assert diff["knf_max"] < 1e-3 and diff["exact_max"] < 1e-3


def test_the_first_k_means_mfccs_are_kaldis_of_the_int16_samples(full_scale):
    import torchaudio.compliance.kaldi as kaldi

    from espnet_distill.make_teacher.kmeans_labels import LABEL_SHIFT_MS, mfcc_features

    data, samples = full_scale
    read, _ = read_audio("u1", str(data.parent / "wav" / "u1.wav"))
    reference = kaldi.mfcc(
        torch.from_numpy(samples.astype(np.float32))[None],
        sample_frequency=16000.0,
        frame_length=25.0,
        frame_shift=LABEL_SHIFT_MS,
        num_ceps=13,
        dither=0.0,
        energy_floor=0.0,
    )
    np.testing.assert_array_equal(mfcc_features(read)[:, :13], (reference - reference.mean(dim=0)).numpy())


def test_teacher_codebook_and_k_means_frames_take_floats(full_scale):
    from espnet_distill.make_teacher.codebook import teacher_layer_frames
    from espnet_distill.make_teacher.layer_frames import teacher_layer_features

    data, samples = full_scale
    teacher = RecordingTeacher()
    teacher_layer_frames(teacher, data / "wav.scp", 1, 10)
    teacher_layer_features(teacher, {"u1": str(data.parent / "wav" / "u1.wav")}, 1)
    assert len(teacher.inputs) == 2
    for wave in teacher.inputs:
        in_minus_one_to_one(wave, samples)


def test_teacher_pretraining_takes_floats(full_scale, tmp_path):
    from espnet_distill.make_teacher.pretrain import LabelledAudio, num_model_frames

    data, samples = full_scale
    labels = tmp_path / "labels"
    labels.write_text("u1 " + " ".join(["0"] * num_model_frames(NUM_SAMPLES)) + "\n")
    (item,) = LabelledAudio(data, labels).items
    in_minus_one_to_one(item[1], samples)


def test_check_teacher_runs_the_teacher_on_floats(full_scale, tmp_path, monkeypatch):
    from espnet_distill.recipe import check_teacher

    data, samples = full_scale
    teacher = RecordingTeacher()
    monkeypatch.setattr(check_teacher, "load_teacher", lambda *a, **k: teacher)
    check_teacher.main(
        ["--teacher", "torchaudio", "--path", "t.pt", "--data_dir", str(data), "--out_dir", str(tmp_path)]
    )
    (wave,) = teacher.inputs
    in_minus_one_to_one(wave, samples)


def test_check_student_runs_the_student_on_floats(full_scale, tmp_path, monkeypatch):
    from espnet_distill.recipe import check_student

    data, samples = full_scale
    inputs = []

    def frontend(wave, lengths):
        inputs.append(wave.clone())
        return torch.zeros(1, 3, 4), torch.tensor([3])

    description = {"frontend": "f", "encoder": "e", "params": {"total": 1}}
    monkeypatch.setattr(
        check_student, "load_student", lambda exp_dir: (frontend, lambda f, n: (f, n, None), description)
    )
    summary = {"final": {"valid": {}}, "audio_seconds_per_second": 1.0, "train_steps": 1}
    (tmp_path / "distill_summary.json").write_text(json.dumps(summary))
    check_student.main(["--data_dir", str(data), str(tmp_path)])
    (wave,) = inputs
    in_minus_one_to_one(wave, samples)


def test_decoding_reads_floats(full_scale):
    from espnet_distill.inference.audio import read_utterance

    data, samples = full_scale
    in_minus_one_to_one(read_utterance("u1", str(data.parent / "wav" / "u1.wav")), samples)
