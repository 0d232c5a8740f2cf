"""A ``segments`` file is refused by name wherever a data dir's ``wav.scp`` is read.

Training reads ``wav.scp`` through ESPnet's ``sound`` reader, which reads whole
files: segments would be silently ignored, so every reader refuses them.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from espnet_distill.data.kaldi_dir import DataDirError
from tests.conftest import write_wav


@pytest.fixture
def dir_with_segments(tmp_path):
    """A data dir whose one recording holds two segments, the second past the end of its 1 s of audio."""
    d = tmp_path / "data"
    d.mkdir()
    wav = write_wav(tmp_path / "rec1.wav", np.random.default_rng(0).integers(-2000, 2000, 16000))
    (d / "wav.scp").write_text(f"spkA-rec1 {wav}\n")
    (d / "segments").write_text("spkA-rec1-0001 spkA-rec1 0.00 0.50\nspkA-rec1-0002 spkA-rec1 0.50 9.00\n")
    (d / "utt2spk").write_text("spkA-rec1-0001 spkA\nspkA-rec1-0002 spkA\n")
    (d / "spk2utt").write_text("spkA spkA-rec1-0001 spkA-rec1-0002\n")
    (d / "text").write_text("spkA-rec1-0001 HI\nspkA-rec1-0002 HO\n")
    return d


def refused(d, call):
    with pytest.raises(DataDirError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{d}/segments: segments files are not supported"), message
    assert "sox in.wav out.wav trim <start> =<end>" in message


def test_validator(dir_with_segments):
    from espnet_distill.data.validate import validate_data_dir

    refused(dir_with_segments, lambda: validate_data_dir(dir_with_segments, check_audio=True))


def test_compute_fbank_checks_beside_its_wav_scp(dir_with_segments, tmp_path):
    from espnet_distill.bin.compute_fbank import compute_job
    from espnet_distill.features.fbank import FbankOptions

    out = tmp_path / "fbank"
    refused(dir_with_segments, lambda: compute_job(dir_with_segments / "wav.scp", out / "raw_fbank.1", FbankOptions()))
    assert not out.exists()  # refused before anything is written


def test_speech_shape(dir_with_segments, tmp_path):
    from espnet_distill.recipe.speech_shape import write_speech_shape

    refused(dir_with_segments, lambda: write_speech_shape(dir_with_segments, tmp_path / "speech_shape"))
    assert not (tmp_path / "speech_shape").exists()


def test_teacher_codebook_and_pretraining_and_benchmark(dir_with_segments, tmp_path):
    from espnet_distill.benchmark.inputs import read_utterances
    from espnet_distill.make_teacher.codebook import teacher_layer_frames
    from espnet_distill.make_teacher.pretrain import LabelledAudio

    teacher = SimpleNamespace(num_layers=2)  # refused before the teacher is used
    refused(dir_with_segments, lambda: teacher_layer_frames(teacher, dir_with_segments / "wav.scp", 1, 10))
    labels = tmp_path / "labels"
    labels.write_text("spkA-rec1 1 2 3\n")
    refused(dir_with_segments, lambda: LabelledAudio(dir_with_segments, labels))
    refused(dir_with_segments, lambda: read_utterances(dir_with_segments, None))


def test_training_and_decoding(dir_with_segments, tmp_path):
    """distill_train and asr_train (ESPnet's sound reader reads whole files) and asr_inference refuse it."""
    import argparse

    from espnet_distill.tasks.abs_task import SafeTask

    wav_scp = str(dir_with_segments / "wav.scp")
    for key in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type"):
        args = argparse.Namespace(**{key: [(wav_scp, "speech", "sound")]})
        refused(dir_with_segments, lambda args=args: SafeTask.main_worker(args))

    from espnet_distill.inference.decode import calibration_waves

    refused(dir_with_segments, lambda: calibration_waves(dir_with_segments, 2))
