"""export_onnx: the whole inference path as one ONNX graph, fp32 parity with PyTorch, the int8 variant."""

import argparse
import collections
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
import yaml

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.export.onnx import export_graph, export_onnx
from espnet_distill.inference.decode import load_asr_model, read_waves
from espnet_distill.inference.forward import CTCInference
from espnet_distill.inference.onnx_runtime import OnnxCTC
from espnet_distill.tasks.asr import ASRTask
from tests.tasks.test_asr_task import setup, train, with_random_ctc  # noqa: F401  (the tiny fine-tuning's fixture)

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FBANK = {"frontend": "fbank", "frontend_conf": {"output_dim": 64, "dropout": 0.0}}


@pytest.fixture(scope="module")
def exps(setup, tiny_corpus, tmp_path_factory):  # noqa: F811
    """A tiny fine-tuned wav_cnn model and an Fbank one with the same encoder, each with a random CTC layer
    (no <unk>, no <sos/eos>) so that greedy decoding emits text."""
    root = tmp_path_factory.mktemp("onnx")
    train(setup, tiny_corpus, root / "wav_cnn")
    config = yaml.safe_load((root / "wav_cnn" / "config.yaml").read_text())
    (root / "fbank").mkdir()
    fbank_config = {**config, **FBANK, "output_dir": str(root / "fbank")}
    torch.manual_seed(0)
    fbank_model = ASRTask.build_model(argparse.Namespace(**fbank_config))
    stats = fbank_model.frontend.state_dict()
    for name in ("cmvn_mean", "cmvn_istd"):  # data-like CMVN: log-mel energies around 10, spread 3
        key = next(k for k in stats if k.endswith(name))
        stats[key].fill_(10.0 if name == "cmvn_mean" else 1 / 3)
    fbank_model.frontend.load_state_dict(stats)
    (root / "fbank" / "config.yaml").write_text(yaml.safe_dump(fbank_config))
    # A pruned student's layers: fewer heads and feed-forward units, one layer without attention, one without FFN;
    # its CNN's convolutions of different widths (the last one kept).
    (root / "pruned").mkdir()
    conf = config["encoder_conf"]
    layers = conf["num_layers"]
    pruned_conf = {
        **conf,
        "layer_heads": [0] + [max(1, conf["attention_heads"] // 2)] * (layers - 1),
        "layer_ffn_dims": [conf["ffn_dim"] // 3] * (layers - 1) + [0],
    }
    conv = [list(layer) for layer in config["frontend_conf"]["conv_layers"]]
    for index, layer in enumerate(conv[:-1]):
        layer[0] = max(1, layer[0] - 3 - index)
    pruned_frontend = {**config["frontend_conf"], "conv_layers": conv}
    pruned_config = {
        **config,
        "frontend_conf": pruned_frontend,
        "encoder_conf": pruned_conf,
        "output_dir": str(root / "pruned"),
    }
    torch.manual_seed(0)
    pruned_model = ASRTask.build_model(argparse.Namespace(**pruned_config))
    (root / "pruned" / "config.yaml").write_text(yaml.safe_dump(pruned_config))
    out = {}
    for name, state in (
        ("wav_cnn", torch.load(root / "wav_cnn" / "valid.cer_ctc.ave.pth", weights_only=True)),
        ("fbank", fbank_model.state_dict()),
        ("pruned", pruned_model.state_dict()),
    ):
        torch.save(with_random_ctc(state), root / name / "noisy.pth")
        out[name] = root / name
    return out


@pytest.mark.parametrize("frontend", ["wav_cnn", "fbank", "pruned"])
def test_one_graph_with_dynamic_batch_and_length_matches_pytorch(exps, tiny_corpus, tmp_path, frontend):
    result = export_onnx(exps[frontend], tmp_path / "onnx", "noisy.pth", int8=True)
    assert sorted(result.files) == ["SHA256SUMS", "model.int8.onnx", "model.json", "model.onnx", "tokens.txt"]
    model, _ = load_asr_model(exps[frontend], "noisy.pth")
    wrapper = CTCInference(model).eval()
    session = OnnxCTC(tmp_path / "onnx" / "model.onnx")
    waves = read_waves(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp"), 400, 3)
    # Batches the export never saw: sizes 1 and 3, padded, other lengths.
    for batch in ([next(iter(waves.values()))], list(waves.values())):
        lengths = np.array([len(w) for w in batch])
        speech = np.zeros((len(batch), lengths.max()), dtype=np.float32)
        for i, w in enumerate(batch):
            speech[i, : len(w)] = w
        out, out_lengths = session(speech, lengths)
        with torch.no_grad():
            ref, ref_lengths = wrapper(torch.from_numpy(speech), torch.from_numpy(lengths))
        assert out_lengths.tolist() == ref_lengths.tolist()
        for i, n in enumerate(ref_lengths.tolist()):
            np.testing.assert_allclose(out[i, :n], ref[i, :n].numpy(), atol=1e-4, rtol=0)
    assert (tmp_path / "onnx" / "tokens.txt").read_text().splitlines() == list(model.token_list)


@pytest.mark.parametrize("frontend", ["wav_cnn", "fbank"])
def test_the_cli_checks_parity_and_reports_int8(exps, tiny_corpus, tmp_path, frontend):
    cmd = [
        sys.executable,
        "-m",
        "espnet_distill.bin.export_onnx",
        str(exps[frontend]),
        str(tmp_path / "onnx"),
        "--checkpoint",
        "noisy.pth",
        "--data_dir",
        str(tiny_corpus["data"] / "test"),
        "--max_utts",
        "4",
        "--calibration_dir",
        str(tiny_corpus["data"] / "train"),
        "--calibration_utts",
        "3",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((tmp_path / "onnx" / "model.json").read_text())
    # Statically quantized: the positional convolution, and the Fbank front-end's subsampling convolution
    # (its int8_layers).  Float: the waveform CNN, or the Fbank spectrum (a convolution) and mel MatMul.
    int8_ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph.node)
    static, float_convs, float_matmuls = {"wav_cnn": (1, len(model_convs(exps[frontend])) - 1, 0), "fbank": (2, 1, 1)}[
        frontend
    ]
    assert meta["int8"]["static_convs"] == int8_ops["QLinearConv"] == static and int8_ops["Conv"] == float_convs
    assert meta["int8"]["calibration_utterances"] == 3 and len(meta["int8"]["float"]) == float_convs + float_matmuls
    assert meta["onnxruntime"] == {"disabled_optimizers": ["SkipLayerNormFusion"]}
    parity = meta["parity"]
    assert parity["utterances"] == 4 and parity["identical_hypotheses"] == 4 and parity["max_abs_diff"] < 1e-3
    assert (
        set(parity["cer"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
        and parity["cer"]["onnx_fp32"] == parity["cer"]["pytorch"]
    )
    assert abs(parity["cer"]["onnx_int8"] - parity["cer"]["pytorch"]) < 10  # a random model; the real one is measured
    assert (tmp_path / "onnx" / "parity" / "onnx_int8" / "result.txt").is_file()  # sclite's own output


def model_convs(exp_dir):
    model, _ = load_asr_model(exp_dir, "noisy.pth")
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]


@pytest.mark.parametrize("frontend", ["wav_cnn", "fbank"])
def test_the_graph_holds_plain_weights_and_no_fft(exps, tmp_path, frontend):
    """The positional convolution's weight norm is folded into a constant weight (not recomputed per call)
    and the Fbank spectrum is one MatMul; the graph still computes the model's function, and the model
    exported is left as it was (its weight norm, its FFT)."""
    model, _ = load_asr_model(exps[frontend], "noisy.pth")
    export_graph(model, tmp_path / "model.onnx", 400)
    assert any(torch.nn.utils.parametrize.is_parametrized(m) for m in model.modules())
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    weights = {i.name for i in graph.initializer}
    ops = collections.Counter(n.op_type for n in graph.node)
    assert all(n.input[1] in weights for n in graph.node if n.op_type == "Conv")
    assert ops["ReduceL2"] == 0 and ops["DFT"] == 0  # no weight norm, no FFT
    fresh, _ = load_asr_model(exps[frontend], "noisy.pth")
    speech = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        a, _ = CTCInference(fresh).eval()(speech, torch.tensor([8000]))
        exported, _ = CTCInference(model).eval()(speech, torch.tensor([8000]))
        session = OnnxCTC(tmp_path / "model.onnx")
        b, _ = session(speech.numpy(), np.array([8000]))
    assert torch.equal(exported, a)
    np.testing.assert_allclose(b, a.numpy(), atol=1e-4, rtol=0)


def test_a_failed_parity_check_keeps_nothing(exps, tiny_corpus, tmp_path):
    waves = read_waves(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp"), 400, 2)
    with pytest.raises(ValueError, match="does not match PyTorch"):
        export_onnx(
            exps["wav_cnn"], tmp_path / "onnx", "noisy.pth", int8=False, waves=waves, tolerance=-1.0
        )  # nothing can pass
    assert not (tmp_path / "onnx").exists() and not list(tmp_path.glob(".onnx.*"))
