"""export_onnx: SHA256SUMS beside what it writes (the released model's layout), output paths refused before any work.

A tiny random Fbank model (``benchmark_deploy``'s description-YAML exp dir) stands in for a trained one.
"""

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_distill.utils.cli import run
from tests.conftest import REPO_ROOT, one_error, run_main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.usefixtures("restore_logging")  # the commands point the root logger at stderr

RELEASED = REPO_ROOT / "egs" / "mini_synth" / "asr1" / "pretrained" / "asr_mini_fbank"
TINY = """\
frontend: fbank
frontend_conf: {output_dim: 32, conv_channels: 32, dropout: 0.0}
encoder: transformer
encoder_conf: {output_size: 32, num_layers: 1, attention_heads: 2, ffn_dim: 32, pos_conv_kernel: 8, pos_conv_groups: 4}
"""


@pytest.fixture(scope="module")
def tiny_exp(tmp_path_factory):
    """A fine-tuning exp dir (config.yaml, model.pth) of a tiny Fbank student with random weights, 12 tokens."""
    from espnet_distill.benchmark.deploy import _random_exp

    root = tmp_path_factory.mktemp("tiny_exp")
    (root / "tiny.yaml").write_text(TINY)
    return _random_exp(root / "tiny.yaml", 12, root / "exp")


@pytest.fixture
def no_export(monkeypatch):
    """Exporting is the work that must not start: it fails the test if it does."""
    import espnet_distill.export.onnx as onnx_export

    def refuse(*args, **kwargs):
        raise AssertionError("the export started")

    monkeypatch.setattr(onnx_export, "export_graph", refuse)


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_an_out_dir_that_cannot_be_written_is_refused_before_the_export(tiny_exp, tmp_path, capsys, no_export, where):
    from espnet_distill.bin.export_onnx import main

    blocker = tmp_path / "taken"
    blocker.write_text("a regular file\n")
    out_dir = blocker if where == "a_file" else blocker / "onnx"
    code, out, err = run_main(main, capsys, tiny_exp, out_dir, "--checkpoint", "model.pth")
    assert code == 1 and out == ""
    expected = "exists and is not a directory" if where == "a_file" else f"{blocker} is not a directory"
    one_error(err, f"{out_dir}: ", expected)
    assert blocker.read_text() == "a regular file\n" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_the_library_function_refuses_the_out_dir_first_too(tiny_exp, tmp_path, no_export):
    from espnet_distill.export.onnx import export_onnx

    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match="taken: the export directory exists and is not a directory"):
        export_onnx(tiny_exp, tmp_path / "taken", "model.pth")


def test_benchmark_deploy_refuses_its_out_dir_before_any_model_is_built(tmp_path, capsys, monkeypatch):
    from espnet_distill.bin import benchmark_deploy

    monkeypatch.setattr(benchmark_deploy, "read_utterances", lambda *a: pytest.fail("the benchmark started"))
    (tmp_path / "taken").write_text("")
    code, out, err = run_main(
        benchmark_deploy.main,
        capsys,
        "--model",
        f"tiny={tmp_path / 'tiny.yaml'}",
        "--data_dir",
        tmp_path,
        "--out_dir",
        tmp_path / "taken",
    )
    assert code == 1 and out == ""
    assert f"{tmp_path / 'taken'}: the output directory exists and is not a directory" in err


def test_the_export_dir_has_sha256sums_in_the_released_layout_and_transcribe_verifies_it(tiny_exp, tmp_path, capsys):
    from espnet_distill.bin.export_onnx import main as export
    from espnet_distill.bin.transcribe import main as transcribe

    code, _, err = run_main(export, capsys, tiny_exp, tmp_path / "onnx", "--checkpoint", "model.pth")
    assert code == 0, err
    onnx_dir = tmp_path / "onnx"
    lines = (onnx_dir / "SHA256SUMS").read_text().splitlines()
    # The released model's layout: "<sha256>  <name relative to the dir>", the same files in the same order.
    released_names = [line.split("  ", 1)[1] for line in (RELEASED / "SHA256SUMS").read_text().splitlines()]
    assert released_names == ["model.onnx", "model.int8.onnx", "tokens.txt", "model.json"]
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == released_names
    for line, name in zip(lines, names):
        assert line == f"{hashlib.sha256((onnx_dir / name).read_bytes()).hexdigest()}  {name}"
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=onnx_dir, capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout.count(": OK") == 4, check.stdout + check.stderr

    wav = tmp_path / "a.wav"
    sf.write(str(wav), np.random.default_rng(0).standard_normal(16000) * 0.1, 16000, subtype="PCM_16")
    code, out, err = run_main(transcribe, capsys, "--model", onnx_dir, "--int8", "true", wav)
    assert code == 0 and out.split()[0] == str(wav), err
    tokens = onnx_dir / "tokens.txt"
    tokens.write_text(tokens.read_text().replace("\nt3\n", "\nx3\n"))  # still a token list of the same length
    code, out, err = run_main(transcribe, capsys, "--model", onnx_dir, "--int8", "true", wav)
    assert code == 1 and out == "" and f"{tokens}: its SHA-256" in err


def test_sha256sums_read_and_verified_as_sha256sum_writes_them(tmp_path):
    from espnet_distill.utils.checksums import ChecksumError, read_sums, verify_sums, write_sums

    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "b.txt").write_text("hello\n")
    assert verify_sums(tmp_path, ["a.bin"]) is False  # no SHA256SUMS: nothing to verify
    write_sums(tmp_path, ["a.bin", "b.txt"])
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert (tmp_path / "SHA256SUMS").read_text().splitlines()[0] == f"{abc}  a.bin"
    assert read_sums(tmp_path / "SHA256SUMS")["a.bin"] == abc
    assert verify_sums(tmp_path, ["b.txt", "a.bin"]) is True
    (tmp_path / "b.txt").write_text("hellO\n")
    with pytest.raises(ChecksumError, match=r"b\.txt: its SHA-256 .* is not the"):
        verify_sums(tmp_path, ["a.bin", "b.txt"])
    (tmp_path / "SHA256SUMS").write_text(f"{abc.upper()} *a.bin\nnot a checksum line\n")
    with pytest.raises(ChecksumError, match=r"SHA256SUMS: line 2 is not"):
        verify_sums(tmp_path, ["a.bin"])
    (tmp_path / "SHA256SUMS").write_text(f"{abc.upper()} *./a.bin\n")  # binary mode, upper case, ./ prefix
    assert verify_sums(tmp_path, [Path("a.bin").as_posix()]) is True


def test_export_ready_gives_a_plain_copy_and_leaves_the_model_as_it_was(tiny_exp):
    """The copy holds plain weights (no weight norm recomputed per call) and the frame-basis spectrum; the
    model keeps its parametrization (a deep copy shares torch's parametrized class: the copy gets its own)."""
    import torch

    from espnet_distill.export.onnx import export_ready
    from espnet_distill.inference.decode import load_asr_model
    from espnet_distill.inference.forward import CTCInference

    model, _ = load_asr_model(tiny_exp, "model.pth")
    speech = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        before, _ = CTCInference(model)(speech, torch.tensor([8000]))
        ready = export_ready(model)
        after, _ = CTCInference(model)(speech, torch.tensor([8000]))
        copied, _ = CTCInference(ready)(speech, torch.tensor([8000]))
    parametrized = torch.nn.utils.parametrize.is_parametrized
    assert any(parametrized(m) for m in model.modules()) and not any(parametrized(m) for m in ready.modules())
    assert model.frontend.fbank.frame_basis is None and ready.frontend.fbank.frame_basis is not None
    assert torch.equal(before, after)
    torch.testing.assert_close(copied, before, atol=1e-4, rtol=0)


def test_the_cli_loads_the_model_once_and_the_parity_check_reads_what_was_written(tiny_exp, tmp_path, monkeypatch):
    import espnet_distill.export.onnx as onnx_export
    import espnet_distill.inference.decode as decode
    from espnet_distill.bin.export_onnx import main

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(data / f"u{i}.wav", rng.standard_normal(12000 + 4000 * i) * 0.1, 16000, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"u{i} {data / f'u{i}.wav'}\n" for i in range(3)))
    loads = []
    real = decode.load_asr_model

    def counted(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, "load_asr_model", counted)
    monkeypatch.setattr(onnx_export, "load_asr_model", counted)
    out_dir = tmp_path / "onnx"
    with pytest.raises(SystemExit) as exit_:
        run(
            main,
            [str(a) for a in (tiny_exp, out_dir, "--checkpoint", "model.pth", "--data_dir", data)]
            + ["--calibration_dir", str(data), "--calibration_utts", "2"],
        )
    assert exit_.value.code == 0 and len(loads) == 1
    parity = json.loads((out_dir / "model.json").read_text())["parity"]
    assert parity["utterances"] == 3 and parity["identical_hypotheses"] == 3 and parity["max_abs_diff"] < 1e-3
    # The check is a step of its own on an export dir: run again on the files written, it measures the same.
    from espnet_distill.data.kaldi_dir import read_wav_scp
    from espnet_distill.text.tokens import Tokenizer

    model, args = real(tiny_exp, "model.pth")
    waves = decode.read_waves(read_wav_scp(data / "wav.scp"), decode.min_samples(model))
    again, hyps = onnx_export.check_parity(model, out_dir, waves, Tokenizer(args.token_list, "char", None))
    assert dataclasses.asdict(again) == parity and set(hyps) == {"pytorch", "onnx_fp32", "onnx_int8"}
