import os
import re
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest

from espnet_distill.bin import compute_fbank
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.features.fbank import CMVNStats
from espnet_distill.recipe import merge_feats
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


def test_a_byte_order_mark_in_wav_scp_is_an_error_not_part_of_the_first_id(good_scp, tmp_path, capsys):
    scp = tmp_path / "wav.scp"
    scp.write_bytes(b"\xef\xbb\xbf" + "".join(f"{u} {p}\n" for u, p in good_scp[:2]).encode())
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "raw_fbank.1")])
    assert info.value.code == 1
    assert f"{scp}:1: starts with a UTF-8 byte-order mark; remove it" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    "command, message",
    [
        ("sh -c 'cat {path}; exit 1' | cat", r"command \"sh -c 'cat .*; exit 1' \| cat \" failed \(exit 1\)"),
        ("sh -c 'head -c 20000 {path}; exit 1' | cat", r"command \"sh -c 'head -c 20000 .*' \| cat \" failed"),
        ("head -c 30000 {path}", r"the output of command 'head -c 30000 .*' is truncated: its WAV header declares"),
    ],
)
def test_a_failing_or_short_pipe_stops_the_job(good_scp, tmp_path, capsys, command, message):
    entries = good_scp[:1] + [("zz-pipe-0001", command.format(path=good_scp[0][1]) + " |")]
    scp = write_scp(tmp_path / "wav.scp", entries)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "raw_fbank.1")])
    assert info.value.code == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line]
    assert re.search(rf"utterance 'zz-pipe-0001': {message}", error), error
    assert list(out.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("num_mel_bins", "0", "num_mel_bins=0: must be at least 3"),
        ("num_mel_bins", "300", "num_mel_bins=300: too many for a 512-point FFT between 20 and 8000 Hz"),
        ("frame_length", "-25", "frame_length=-25.0: must be positive"),
        ("frame_shift", "0", "frame_shift=0.0: must be positive"),
        ("sample_rate", "0", "sample_rate=0: must be positive"),
        ("high_freq", "9000", "high_freq=9000.0: gives a top frequency of 9000 Hz, which must be above low_freq=20"),
        ("low_freq", "-1", "low_freq=-1.0: must be at least 0"),
        ("dither", "nan", "dither=nan: must be a finite number"),
        ("preemphasis_coefficient", "1.5", "preemphasis_coefficient=1.5: must be between 0 and 1"),
    ],
)
def test_nonsensical_options_are_usage_errors(tmp_path, capsys, option, value, message):
    scp = write_scp(tmp_path / "wav.scp", [("u1", str(write_wav(tmp_path / "u1.wav", np.ones(16000))))])
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "f.1"), f"--{option}", value])
    assert info.value.code == 2
    assert f"error: fbank option {message}" in capsys.readouterr().err
    assert not out.exists()


def test_a_nonsensical_option_in_the_config_is_an_error_naming_it(tmp_path, capsys):
    conf = tmp_path / "fbank.yaml"
    conf.write_text("num_mel_bins: 0\n")
    with pytest.raises(SystemExit) as info:
        compute_fbank.main(["--config", str(conf), "--wav_scp", "x.scp", "--out_prefix", str(tmp_path / "f.1")])
    assert info.value.code == 2
    assert f"error: fbank option num_mel_bins=0: must be at least 3 (options from {conf}" in capsys.readouterr().err


def run_command(repo_root, *args):
    return subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.compute_fbank", *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_config_file_or_a_bad_number_is_one_line_not_a_traceback(repo_root, tmp_path):
    missing = run_command(repo_root, "--config", str(tmp_path / "nope.yaml"), "--wav_scp", "x", "--out_prefix", "y")
    assert (missing.returncode, missing.stderr) == (
        1,
        f"compute_fbank: error: {tmp_path}/nope.yaml: no such --config file\n",
    )
    zero = run_command(repo_root, "--num_mel_bins", "0", "--wav_scp", "x", "--out_prefix", "y")
    assert zero.returncode == 2
    assert zero.stderr.splitlines()[-1] == "compute_fbank.py: error: fbank option num_mel_bins=0: must be at least 3"
    assert "Traceback" not in zero.stderr and "internal error" not in zero.stderr


FINAL = ["raw_fbank.1.ark", "raw_fbank.1.scp", "raw_fbank.1.stats.npz", "raw_fbank.1.utt2num_frames"]


def test_a_rerun_removes_the_temporary_files_of_a_killed_run_and_only_those(good_scp, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = [  # what a run killed mid-write leaves: tmp_path_for's names, under the pid of the dead run
        ".raw_fbank.1.ark.tmp4194301",
        ".raw_fbank.1.scp.tmp4194301",
        ".raw_fbank.1.utt2num_frames.tmp4194301",
        ".raw_fbank.1.stats.npz.tmp77",
    ]
    others = [".raw_fbank.11.ark.tmp4194301", ".raw_fbank.2.scp.tmp12", ".raw_fbank.1.ark.bak", "notes.txt"]
    for name in stale + others:
        (out / name).write_bytes(b"half-written")
    scp = write_scp(tmp_path / "wav.scp", good_scp[:1])
    compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "raw_fbank.1")])
    assert sorted(p.name for p in out.iterdir()) == sorted(FINAL + others)
    assert list(kaldiio.load_scp(str(out / "raw_fbank.1.scp"))) == [good_scp[0][0]]


def test_a_run_killed_mid_write_is_cleaned_up_by_the_rerun(good_scp, tmp_path, repo_root):
    out = tmp_path / "out"
    first_utt, first_wav = good_scp[0]
    # The second utterance's pipe waits, so the job is killed while its temporary files are open.
    scp = write_scp(tmp_path / "wav.scp", [(first_utt, first_wav), ("zz-slow", f"sleep 60; cat {first_wav} |")])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "espnet_distill.bin.compute_fbank",
            "--wav_scp",
            str(scp),
            "--out_prefix",
            str(out / "raw_fbank.1"),
        ],
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the sleeping pipe with it
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.is_dir() and any(p.name.startswith(".raw_fbank.1.ark.tmp") for p in out.iterdir())):
            assert time.monotonic() < deadline and proc.poll() is None, "compute_fbank never started writing"
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = sorted(p.name for p in out.iterdir())
    assert left and all(name.startswith(".raw_fbank.1.") and f".tmp{proc.pid}" in name for name in left), left
    write_scp(scp, [(first_utt, first_wav)])
    compute_fbank.main(["--wav_scp", str(scp), "--out_prefix", str(out / "raw_fbank.1")])
    assert sorted(p.name for p in out.iterdir()) == FINAL
