"""transcribe refuses what it cannot use, one line naming the file: truncated audio, a damaged or mismatched
export dir (SHA256SUMS, tokens.txt, model.json against the graph), bad options; a failing file leaves the rest.

Fast: the released mini Fbank student (an ONNX export dir) copied into ``tmp_path`` and changed there.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT, one_error, run_main

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("restore_logging")  # transcribe's main points the root logger at stderr

RELEASED = REPO_ROOT / "egs" / "mini_synth" / "asr1" / "pretrained" / "asr_mini_fbank"


@pytest.fixture
def model_dir(tmp_path):
    """A writable copy of the released export dir (with its SHA256SUMS)."""
    return shutil.copytree(RELEASED, tmp_path / "model")


@pytest.fixture
def unsummed(model_dir):
    """The copy without SHA256SUMS, so that a changed file reaches the check that the test is about."""
    (model_dir / "SHA256SUMS").unlink()
    return model_dir


def noise_wav(path, seconds, seed=0):
    rng = np.random.default_rng(seed)
    sf.write(str(path), rng.standard_normal(int(16000 * seconds)) * 0.1, 16000, subtype="PCM_16")
    return path


def transcribe(capsys, *argv):
    """``python -m espnet_distill.bin.transcribe *argv`` in this process: (exit status, stdout lines, stderr)."""
    from espnet_distill.bin.transcribe import main

    code, out, err = run_main(main, capsys, *argv)
    return code, out.splitlines(), err


# 1. Audio shorter than its header says.


def test_a_truncated_wav_is_named_and_the_other_files_are_transcribed(model_dir, tmp_path, capsys):
    first = noise_wav(tmp_path / "first.wav", 1.0, 1)
    noise_wav(tmp_path / "whole.wav", 4.0, 2)
    data = (tmp_path / "whole.wav").read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[: 44 + 2 * 16000 * 2])  # the header says 4 s; 2 s are there
    last = noise_wav(tmp_path / "last.wav", 1.5, 3)
    code, out, err = transcribe(capsys, "--model", model_dir, "--format", "json", first, truncated, last)
    assert code == 1
    lines = [json.loads(line) for line in out]
    assert [(line["file"], line["duration"]) for line in lines] == [(str(first), 1.0), (str(last), 1.5)]
    error = [line for line in err.splitlines() if "truncated.wav" in line]
    assert len(error) == 1 and f"{truncated} is truncated" in error[0] and "128000 bytes" in error[0], err
    assert "64000 are present" in error[0] and "1 of 3 files could not be transcribed" in err


# 2. SHA256SUMS: the files the backend reads are verified.


@pytest.mark.parametrize("name", ["model.onnx", "tokens.txt", "model.json", "model.int8.onnx"])
def test_a_file_that_does_not_match_sha256sums_is_refused(model_dir, tmp_path, capsys, name):
    wav = noise_wav(tmp_path / "a.wav", 1.0)
    int8 = str(name == "model.int8.onnx").lower()
    code, out, err = transcribe(capsys, "--model", model_dir, "--int8", int8, wav)
    assert code == 0 and len(out) == 1 and out[0].split()[0] == str(wav), err  # the released files pass
    path = model_dir / name
    data = bytearray(path.read_bytes())
    if name.endswith(".onnx"):
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    else:
        data += b" \n"  # still a valid token list / JSON object: only the checksum tells
    path.write_bytes(bytes(data))
    code, out, err = transcribe(capsys, "--model", model_dir, "--int8", int8, wav)
    assert code == 1 and out == []
    one_error(err, f"{path}: its SHA-256", "SHA256SUMS lists", "damaged or was changed")


def test_a_file_that_sha256sums_does_not_list_is_refused(model_dir, tmp_path, capsys):
    sums = model_dir / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "tokens.txt" not in line))
    code, out, err = transcribe(capsys, "--model", model_dir, noise_wav(tmp_path / "a.wav", 1.0))
    assert code == 1 and out == []
    one_error(err, f"{model_dir / 'tokens.txt'}: not listed in {sums}")


# 3. The token list against the model's output.


def test_a_token_list_shorter_than_the_models_output_is_refused(unsummed, tmp_path, capsys):
    tokens = (unsummed / "tokens.txt").read_text().splitlines()
    assert len(tokens) == 31
    (unsummed / "tokens.txt").write_text("\n".join(tokens[:10] + tokens[11:]) + "\n")  # one letter deleted
    code, out, err = transcribe(capsys, "--model", unsummed, noise_wav(tmp_path / "a.wav", 1.0))
    assert code == 1 and out == []
    one_error(err, f"{unsummed / 'tokens.txt'}: 30 tokens", "gives 31 log-probabilities per frame")


# 4. A model dir that cannot be used, bad options, a file that fails at run time.


def _not_onnx(d):
    (d / "model.onnx").write_text("this is not a protobuf\n")


def _empty(d):
    (d / "model.onnx").write_bytes(b"")


def _no_frame_shift(d):
    meta = json.loads((d / "model.json").read_text())
    del meta["frame_shift"]
    (d / "model.json").write_text(json.dumps(meta))


def _not_json(d):
    (d / "model.json").write_text('{"token_type": "char",\n')


def _set(key, value):
    def change(d):
        meta = json.loads((d / "model.json").read_text())
        meta[key] = value
        (d / "model.json").write_text(json.dumps(meta))

    return change


@pytest.mark.parametrize(
    "change, int8, parts",
    [
        (_not_onnx, "false", ["model.onnx: not an ONNX model", "INVALID_PROTOBUF"]),
        (_empty, "false", ["model.onnx: the model file is empty"]),
        (lambda d: (d / "model.int8.onnx").unlink(), "true", ["model.int8.onnx: no such model file", "--int8 true"]),
        (_no_frame_shift, "false", ["model.json: no 'frame_shift' key"]),
        (_not_json, "false", ["model.json: not valid JSON"]),
        (_set("frame_shift", 160), "false", ["model.json: frame_shift 160 does not fit model.onnx", "50 frames more"]),
        (_set("frame_shift", 400), "false", ["model.json: frame_shift 400 does not fit model.onnx"]),
        (_set("min_samples", 100), "false", ["model.json: min_samples 100", "the graph fails on 100 samples"]),
        (_set("min_samples", 0), "false", ["model.json: 'min_samples' must be a positive integer, got 0"]),
    ],
    ids=[
        "not_onnx",
        "empty_onnx",
        "missing_int8",
        "no_frame_shift",
        "not_json",
        "frame_shift_160",
        "frame_shift_400",
        "min_samples_100",
        "min_samples_0",
    ],
)
def test_a_model_dir_that_cannot_be_used_is_one_line_naming_the_file(unsummed, tmp_path, capsys, change, int8, parts):
    change(unsummed)
    # Long enough to be chunked (where a wrong frame_shift broke the stitching) and short (below a min_samples
    # the graph accepts): a model.json that does not fit its graph is refused before any file is run.
    files = [noise_wav(tmp_path / "long.wav", 5.0), noise_wav(tmp_path / "short.wav", 0.015)]
    code, out, err = transcribe(
        capsys, "--model", unsummed, "--int8", int8, "--chunk_seconds", "2", "--context_seconds", "0.5", *files
    )
    assert code == 1 and out == []
    one_error(err, str(unsummed / parts[0].split(":")[0]), *parts)


def test_a_file_that_fails_in_onnx_runtime_is_named_and_the_others_are_transcribed(
    model_dir, tmp_path, capsys, monkeypatch
):
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    doomed_length = 16000 + 123  # the one recording ONNX Runtime is made to fail on
    original = ort.InferenceSession.run

    def run_or_fail(self, outputs, feeds, *args, **kwargs):
        if feeds["speech"].shape[-1] == doomed_length:
            raise InvalidArgument("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : made to fail\nsecond line")
        return original(self, outputs, feeds, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "run", run_or_fail)
    first, last = noise_wav(tmp_path / "first.wav", 1.0, 1), noise_wav(tmp_path / "last.wav", 1.25, 2)
    doomed = noise_wav(tmp_path / "doomed.wav", doomed_length / 16000, 3)
    code, out, err = transcribe(capsys, "--model", model_dir, "--format", "json", first, doomed, last)
    assert code == 1
    assert [(json.loads(line)["file"], json.loads(line)["duration"]) for line in out] == [
        (str(first), 1.0),
        (str(last), 1.25),
    ]
    error = [line for line in err.splitlines() if "doomed.wav" in line]
    assert len(error) == 1 and "made to fail" in error[0] and "second line" not in err, err
    assert error[0].split("ERROR: ")[1].startswith(f"{doomed}: ONNX Runtime failed running model.onnx")
    assert "Traceback" not in err and "1 of 3 files could not be transcribed" in err


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_num_threads_below_one_is_a_usage_error(model_dir, tmp_path, capsys, threads):
    code, out, err = transcribe(capsys, "--model", model_dir, "--num_threads", threads, tmp_path / "a.wav")
    assert code == 2 and out == []
    assert f"argument --num_threads: must be at least 1, got {int(threads)}" in err and "usage:" in err


@pytest.mark.slow  # a process of its own: about 10 s of imports
def test_a_reader_that_stops_early_gets_no_traceback(model_dir, tmp_path):
    """``transcribe ... | head -1``: the first transcript, then a quiet exit (141, as SIGPIPE) when stdout closes."""
    files = [noise_wav(tmp_path / f"{i}.wav", 1.0 if i == 0 else 4.0, i) for i in range(4)]
    cmd = [sys.executable, "-m", "espnet_distill.bin.transcribe", "--model", str(model_dir), *map(str, files)]
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        first = process.stdout.readline()
        process.stdout.close()  # the reader goes away while files are left to transcribe
        code = process.wait(timeout=120)
    err = (tmp_path / "stderr").read_text()
    assert first.split()[0] == str(files[0])
    assert code == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "error" not in err.lower(), err


# load_audio itself, as the library's callers see it.


def test_load_audio_names_a_truncated_file(tmp_path):
    from espnet_distill.inference.audio import TranscribeError, load_audio

    noise_wav(tmp_path / "whole.wav", 1.0)
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-1000])
    with pytest.raises(TranscribeError, match=r"cut\.wav is truncated: its header declares 32000 bytes .* 31000 are"):
        load_audio(tmp_path / "cut.wav")
    assert len(load_audio(tmp_path / "whole.wav")) == 16000


@pytest.mark.parametrize("chunk, context", [("2", "4"), ("8", "-1")])
def test_chunks_without_room_for_their_context_are_a_usage_error(model_dir, tmp_path, capsys, chunk, context):
    """Once an error repeated for every long file; now refused before anything is read."""
    files = [noise_wav(tmp_path / "long.wav", 9.0), noise_wav(tmp_path / "short.wav", 1.0)]
    code, out, err = transcribe(
        capsys, "--model", model_dir, "--chunk_seconds", chunk, "--context_seconds", context, *files
    )
    assert code == 2 and out == []
    assert f"--chunk_seconds {chunk} must exceed twice --context_seconds {context}" in err and "usage:" in err
