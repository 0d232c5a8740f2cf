import numpy as np
import pytest

from espnet_distill.data.audio import AudioError, audio_info, read_audio
from tests.conftest import write_wav

RNG = np.random.default_rng(0)


def noise(num, channels=1):
    shape = (num,) if channels == 1 else (num, channels)
    return RNG.integers(-2000, 2000, size=shape)


def test_reads_float_samples_in_minus_one_to_one(tmp_path):
    samples = noise(1600)
    path = write_wav(tmp_path / "a.wav", samples)
    read, rate = read_audio("utt1", str(path))
    assert rate == 16000 and read.dtype == np.float32
    np.testing.assert_array_equal(read, samples.astype(np.float32) / 32768)  # exactly: a power of two
    assert audio_info("utt1", str(path)) == (1600, 16000, 1)


def test_full_scale_int16_reads_within_minus_one_to_one(tmp_path):
    """What a model takes: every int16 value, the extremes included, is read as value / 32768, never at int16 scale."""
    samples = np.arange(-32768, 32768)
    path = write_wav(tmp_path / "full.wav", samples)
    read, _ = read_audio("utt1", str(path))
    assert read.min() == -1.0 and read.max() == 32767 / 32768 and np.abs(read).max() <= 1.0
    np.testing.assert_array_equal(read, samples.astype(np.float32) / 32768)


def test_reads_a_pipe_entry(tmp_path):
    samples = noise(800)
    path = write_wav(tmp_path / "a.wav", samples)
    read, _ = read_audio("utt1", f"cat {path} |")
    np.testing.assert_array_equal(read, samples.astype(np.float32) / 32768)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"utterance 'u9': audio file .*nope.wav does not exist"):
        read_audio("u9", str(tmp_path / "nope.wav"))


def test_truncated_file(tmp_path):
    path = write_wav(tmp_path / "t.wav", noise(16000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"utterance 'u1': .*t.wav is truncated"):
        read_audio("u1", str(path))
    with pytest.raises(AudioError, match="is truncated"):
        audio_info("u1", str(path))


def test_corrupt_file(tmp_path):
    path = tmp_path / "c.wav"
    path.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match=r"utterance 'u1': cannot read .*c.wav"):
        read_audio("u1", str(path))


def test_stereo_file(tmp_path):
    path = write_wav(tmp_path / "s.wav", noise(1600, channels=2))
    with pytest.raises(AudioError, match=r"utterance 'u1': .*s.wav has 2 channels; expected mono"):
        read_audio("u1", str(path))


def test_wrong_sample_rate(tmp_path):
    path = write_wav(tmp_path / "r.wav", noise(800), rate=8000)
    with pytest.raises(AudioError, match=r"utterance 'u1': .*r.wav is sampled at 8000 Hz; expected 16000 Hz"):
        read_audio("u1", str(path))
    assert read_audio("u1", str(path), expected_rate=None)[1] == 8000


def test_empty_file(tmp_path):
    path = write_wav(tmp_path / "e.wav", np.zeros(0))
    with pytest.raises(AudioError, match=r"utterance 'u1': .*e.wav holds no samples"):
        read_audio("u1", str(path))


def test_failing_pipe(tmp_path):
    with pytest.raises(AudioError, match=r"utterance 'u1': command 'false ' failed"):
        read_audio("u1", "false |")


@pytest.mark.parametrize(
    "fmt,subtype,atol",
    [
        ("WAV", "PCM_16", 0.0),
        ("WAV", "PCM_24", 0.0),
        ("WAV", "PCM_32", 0.0),
        ("WAV", "FLOAT", 0.0),
        ("WAV", "DOUBLE", 0.0),
        ("FLAC", "PCM_16", 0.0),
        ("FLAC", "PCM_24", 0.0),
        ("WAV", "PCM_U8", 256.0),
    ],
)
def test_every_encoding_reads_in_minus_one_to_one_with_the_same_features(tmp_path, fmt, subtype, atol):
    """The same signal stored as 16/24/32-bit PCM, float, double, FLAC or 8-bit: samples and fbank agree."""
    import soundfile
    import torch

    from espnet_distill.features.fbank import FbankOptions, compute_fbank

    t = np.arange(16000) / 16000
    signal = (np.sin(2 * np.pi * 220 * t) * 0.2 + np.sin(2 * np.pi * 1300 * t) * 0.05) * 32767
    reference = np.round(signal).astype(np.int16)  # a signal exactly representable in every encoding but 8-bit
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(str(path), reference.astype(np.float64) / 32768.0, 16000, format=fmt, subtype=subtype)
    read, rate = read_audio("utt1", str(path))
    assert rate == 16000 and read.dtype == np.float32
    # not 0 almost everywhere, as reading a float file as int16 gives; not at int16 scale either
    assert 5000 / 32768 < np.abs(read).max() <= 1.0
    np.testing.assert_allclose(read, reference.astype(np.float32) / 32768, rtol=0, atol=atol / 32768)
    if atol:  # 8-bit: its quantization noise fills the empty mel bins, so only the samples compare
        return
    opts = FbankOptions(dither=0.0)
    torch.testing.assert_close(
        compute_fbank(read, opts), compute_fbank(reference.astype(np.float32) / 32768, opts), atol=1e-4, rtol=0
    )


def test_non_finite_float_samples_are_an_error(tmp_path):
    import soundfile

    samples = np.zeros(1600)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"utterance 'u1': .*nan.wav holds non-finite samples"):
        read_audio("u1", str(path))


def test_a_pipe_whose_first_command_fails_is_an_error(tmp_path):
    """Without pipefail only the last command's exit status (cat: 0) counted, and the audio was accepted."""
    path = write_wav(tmp_path / "u.wav", noise(1600))
    np.testing.assert_array_equal(read_audio("u1", f"cat {path} | cat |")[0], read_audio("u1", str(path))[0])
    with pytest.raises(
        AudioError, match=rf"utterance 'u1': command \"sh -c 'cat {path}; exit 3' \| cat \" failed \(exit 3\)$"
    ):
        read_audio("u1", f"sh -c 'cat {path}; exit 3' | cat |")  # all of the audio came, but a command failed
    with pytest.raises(AudioError, match=r"utterance 'u1': command .* failed \(exit 1\): oops$"):
        read_audio("u1", f"sh -c 'head -c 2000 {path}; echo oops >&2; exit 1' | cat |")


def test_a_pipe_that_stops_early_is_an_error_unless_its_wav_size_is_unknown(tmp_path):
    samples = noise(1600)
    path = write_wav(tmp_path / "u.wav", samples)  # 3244 bytes: cat's one write fits the pipe, so it exits 0
    with pytest.raises(
        AudioError,
        match=rf"utterance 'u1': the output of command 'cat {path} \| head -c 2000 ' is truncated: "
        r"its WAV header declares 3200 bytes of audio but only 1956 came$",
    ):
        read_audio("u1", f"cat {path} | head -c 2000 |")
    # A streamed WAV (the writer could not seek back to its header) declares no size: it is read whole.
    data = path.read_bytes()
    assert data[40:44] == (3200).to_bytes(4, "little")
    for unknown in (0xFFFFFFFF, 0x7FFFF000):  # the "unknown" marker, sox's placeholder
        streamed = tmp_path / f"streamed{unknown}.wav"
        streamed.write_bytes(data[:40] + unknown.to_bytes(4, "little") + data[44:])
        read, _ = read_audio("u1", f"cat {streamed} |")
        np.testing.assert_array_equal(read, samples.astype(np.float32) / 32768)
