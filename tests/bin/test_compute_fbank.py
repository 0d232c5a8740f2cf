import kaldiio
import numpy as np
import pytest

from espnet_distill.bin import compute_fbank, merge_feats
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.features.fbank import CMVNStats
from tests.conftest import write_wav


@pytest.fixture
def good_scp(tiny_corpus, tmp_path):
    entries = list(read_kaldi_map(tiny_corpus["data"] / "dev" / "wav.scp").items())
    return entries


def write_scp(path, entries):
    path.write_text("".join(f"{u} {p}\n" for u, p in entries))
    return path


def test_job_writes_features_frames_and_stats(good_scp, tmp_path):
    scp = write_scp(tmp_path / "wav.scp", good_scp)
    compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(tmp_path / "out" / "raw_fbank.1")])
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "raw_fbank.1.scp")))
    frames = read_kaldi_map(tmp_path / "out" / "raw_fbank.1.utt2num_frames")
    assert list(feats) == [u for u, _ in good_scp]
    for utt, mat in feats.items():
        assert mat.shape == (int(frames[utt]), 80)
    stats = CMVNStats.load_npz(tmp_path / "out" / "raw_fbank.1.stats.npz")
    everything = np.concatenate(list(feats.values()))
    assert stats.count == everything.shape[0]
    np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "raw_fbank.1.ark",
        "raw_fbank.1.scp",
        "raw_fbank.1.stats.npz",
        "raw_fbank.1.utt2num_frames",
    ]


def test_merge_jobs_into_data_dir(good_scp, tmp_path, data_dir_copy):
    half = len(good_scp) // 2
    for job, part in ((1, good_scp[:half]), (2, good_scp[half:])):
        scp = write_scp(tmp_path / f"wav.{job}.scp", part)
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(tmp_path / "f" / f"raw_fbank.{job}")])
    merge_feats.main(["--data_dir", str(data_dir_copy), "--prefix", str(tmp_path / "f" / "raw_fbank"), "--nj", "2"])
    feats = read_kaldi_map(data_dir_copy / "feats.scp")
    assert list(feats) == [u for u, _ in good_scp]
    assert kaldiio.load_mat(str(data_dir_copy / "cmvn.ark")).shape == (2, 81)
    stats = CMVNStats.load_npz(data_dir_copy / "feats_stats.npz")
    assert stats.count == sum(int(v) for v in read_kaldi_map(data_dir_copy / "utt2num_frames").values())


def make_bad(kind, tmp_path, good_path):
    path = tmp_path / f"{kind}.wav"
    rng = np.random.default_rng(0)
    if kind == "missing":
        return path
    if kind == "truncated":
        data = open(good_path, "rb").read()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 20)
    elif kind == "stereo":
        write_wav(path, rng.integers(-100, 100, (16000, 2)))
    elif kind == "rate":
        write_wav(path, rng.integers(-100, 100, 8000), rate=8000)
    elif kind == "too_short":
        write_wav(path, rng.integers(-100, 100, 200))
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "does not exist"),
        ("truncated", "is truncated"),
        ("corrupt", "cannot read"),
        ("stereo", "has 2 channels; expected mono"),
        ("rate", "is sampled at 8000 Hz; expected 16000 Hz"),
        ("too_short", "is too short for one 25.0 ms frame"),
    ],
)
def test_bad_audio_stops_the_job_naming_utterance_and_file(kind, message, good_scp, tmp_path, capsys):
    bad = make_bad(kind, tmp_path, good_scp[0][1])
    entries = good_scp[:2] + [("zz-bad-0001", str(bad))]
    scp = write_scp(tmp_path / "wav.scp", entries)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "raw_fbank.1")])
    assert info.value.code == 1
    error = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line]
    assert len(error) == 1
    assert "utterance 'zz-bad-0001'" in error[0] and str(bad) in error[0] and message in error[0]
    assert list(out.iterdir()) == []  # nothing half-written


def test_duplicate_ids_in_wav_scp(good_scp, tmp_path, capsys):
    scp = write_scp(tmp_path / "wav.scp", good_scp[:2] + good_scp[:1])
    with pytest.raises(SystemExit):
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(tmp_path / "out" / "f.1")])
    assert f"wav.scp:3: duplicate id '{good_scp[0][0]}'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_config_file_sets_options(good_scp, tmp_path):
    conf = tmp_path / "fbank.yaml"
    conf.write_text("num_mel_bins: 40\n")
    scp = write_scp(tmp_path / "wav.scp", good_scp[:1])
    compute_fbank.main(["--config", str(conf), "--wav_scp", str(scp), "--out_prefix", str(tmp_path / "f.1")])
    (mat,) = [m for _, m in kaldiio.load_scp(str(tmp_path / "f.1.scp")).items()]
    assert mat.shape[1] == 40
