"""speech_shape (audio checked before training) and distill_train's --teacher_yaml."""

import numpy as np
import pytest
import soundfile
import yaml

from espnet_distill.bin.distill_train import teacher_yaml_args
from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.recipe.speech_shape import write_speech_shape
from tests.conftest import write_wav


def test_speech_shape_lists_sample_counts(data_dir_copy, tmp_path):
    out = tmp_path / "speech_shape"
    assert write_speech_shape(data_dir_copy, out) == len(read_kaldi_map(data_dir_copy / "wav.scp"))
    for line in out.read_text().splitlines():
        utt, samples = line.split()
        assert soundfile.info(read_kaldi_map(data_dir_copy / "wav.scp")[utt]).frames == int(samples)


@pytest.mark.parametrize(
    "rate,channels,message", [(8000, 1, "is 8000 Hz, expected 16000 Hz"), (16000, 2, "has 2 channels")]
)
def test_speech_shape_rejects_bad_audio_naming_the_utterance(data_dir_copy, tmp_path, rate, channels, message):
    wav_scp = read_kaldi_map(data_dir_copy / "wav.scp")
    victim = list(wav_scp)[1]
    shape = (rate,) if channels == 1 else (rate, channels)
    wav_scp[victim] = str(write_wav(tmp_path / "bad.wav", np.zeros(shape), rate=rate))
    (data_dir_copy / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in wav_scp.items()))
    out = tmp_path / "speech_shape"
    with pytest.raises(AudioError, match=rf"utterance '{victim}'.*{message}"):
        write_speech_shape(data_dir_copy, out)
    assert not out.exists() and not list(tmp_path.glob(".speech_shape*"))


def test_teacher_yaml_becomes_teacher_options_that_explicit_ones_override(tmp_path):
    spec = tmp_path / "teacher.yaml"
    spec.write_text(yaml.safe_dump({"teacher": "fairseq", "teacher_conf": {"path": "/m/hubert_base_ls960.pt"}}))
    argv = teacher_yaml_args(["--config", "c.yaml", "--teacher_yaml", str(spec), "--teacher", "torchaudio"])
    assert argv[:2] == ["--teacher", "fairseq"] and argv[-2:] == ["--teacher", "torchaudio"]
    assert yaml.safe_load(argv[3]) == {"path": "/m/hubert_base_ls960.pt"} and "--teacher_yaml" not in argv
    (tmp_path / "bad.yaml").write_text("teacher_conf: {}\n")
    with pytest.raises(SystemExit, match="cannot read teacher"):
        teacher_yaml_args(["--teacher_yaml", str(tmp_path / "bad.yaml")])


def test_check_teacher_keeps_the_sha256_in_teacher_yaml_and_refuses_another_file(
    tiny_corpus, tiny_teacher_path, tmp_path
):
    import hashlib

    from espnet_distill.recipe.check_teacher import main as check_teacher
    from espnet_distill.teacher import load_teacher

    digest = hashlib.sha256(tiny_teacher_path.read_bytes()).hexdigest()
    argv = ["--teacher", "torchaudio", "--path", str(tiny_teacher_path), "--data_dir", str(tiny_corpus["data"] / "dev")]
    check_teacher([*argv, "--sha256", digest, "--out_dir", str(tmp_path / "ok")])
    spec = yaml.safe_load((tmp_path / "ok" / "teacher.yaml").read_text())
    assert spec["teacher_conf"] == {"path": str(tiny_teacher_path), "sha256": digest}
    assert load_teacher(spec["teacher"], **spec["teacher_conf"]).num_layers == 3  # what the later stages do
    with pytest.raises(SystemExit):
        check_teacher([*argv, "--sha256", "0" * 64, "--out_dir", str(tmp_path / "bad")])
    assert not (tmp_path / "bad" / "teacher.yaml").exists()
