"""export_hf: students as transformers' HubertModel / HubertForCTC, compared with this project's model."""

import subprocess
import sys

import pytest
import torch
import yaml

from espnet_distill.distill.export import build_student, load_student
from espnet_distill.export.huggingface import ExportError, export_hf
from espnet_distill.inference.decode import CTCDecoder, DecodeOptions, load_asr_model
from espnet_distill.text.tokens import Tokenizer
from tests.conftest import tiny_batch
from tests.tasks.test_asr_task import setup, train, with_random_ctc  # noqa: F401  (the tiny fine-tuning's fixture)

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

transformers = pytest.importorskip("transformers")


def student_dir(tmp_path, layer_norm_first):
    """A random wav_cnn student (pre- or post-LN) in the distillation exp dir layout."""
    description = {
        "frontend": "wav_cnn",
        "frontend_conf": {"conv_layers": [[32, 10, 5], [32, 3, 2], [32, 2, 2]], "output_dim": 48},
        "encoder": "transformer",
        "encoder_conf": {
            "output_size": 48,
            "num_layers": 2,
            "attention_heads": 4,
            "ffn_dim": 96,
            "pos_conv_kernel": 16,
            "pos_conv_groups": 4,
            "layer_norm_first": layer_norm_first,
        },
    }
    torch.manual_seed(3)
    frontend, encoder = build_student(description)
    for p in [*frontend.parameters(), *encoder.parameters()]:  # move every norm and bias off its initial value
        p.data.add_(0.1 * torch.randn_like(p))
    state = {
        **{f"frontend.{k}": v for k, v in frontend.state_dict().items()},
        **{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp_path / "student.pth")
    (tmp_path / "student.yaml").write_text(yaml.safe_dump(description))
    return tmp_path


@pytest.mark.parametrize("layer_norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_a_distilled_student_is_a_hubert_model_with_the_same_hidden_states(tmp_path, tiny_corpus, layer_norm_first):
    exp = student_dir(tmp_path / "distill", layer_norm_first)
    assert export_hf(exp, tmp_path / "hf") == "HubertModel"
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "config.json").is_file()
    hf = transformers.HubertModel.from_pretrained(str(tmp_path / "hf")).eval()
    frontend, encoder, _ = load_student(exp)
    waves, lengths = tiny_batch(tiny_corpus, 1)
    with torch.no_grad():
        feats, flens = frontend(waves, lengths)
        states, _ = encoder.hidden_states(feats, flens)
        ours_out = encoder.final_output(states)
        theirs = hf(waves, output_hidden_states=True)
    assert len(theirs.hidden_states) == len(states) == 3
    torch.testing.assert_close(theirs.last_hidden_state, ours_out, atol=2e-5, rtol=0)
    for i in range(len(states) - 1):  # the last entry is normed in pre-LN transformers models
        torch.testing.assert_close(theirs.hidden_states[i], states[i], atol=2e-5, rtol=0, msg=f"hidden state {i}")


@pytest.fixture(scope="module")
def asr_exp(setup, tiny_corpus, tmp_path_factory):  # noqa: F811
    """A tiny fine-tuning with a random CTC layer in ``noisy.pth`` (no <unk>, no <sos/eos>), so that it emits text."""
    out = tmp_path_factory.mktemp("hf") / "asr_tiny"
    train(setup, tiny_corpus, out)
    state = torch.load(out / "valid.cer_ctc.ave.pth", weights_only=True)
    torch.save(with_random_ctc(state), out / "noisy.pth")
    return out


def test_a_fine_tuned_model_is_hubert_for_ctc_with_the_same_log_probs_and_text(asr_exp, tiny_corpus, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "espnet_distill.bin.export_hf",
        str(asr_exp),
        str(tmp_path / "hf"),
        "--checkpoint",
        "noisy.pth",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    hf = transformers.HubertForCTC.from_pretrained(str(tmp_path / "hf")).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(str(tmp_path / "hf"))
    model, args = load_asr_model(asr_exp, "noisy.pth")
    decoder = CTCDecoder(model, Tokenizer(args.token_list, args.token_type, args.bpemodel), DecodeOptions())
    batch, batch_lengths = tiny_batch(tiny_corpus, 3, "test")
    for wave, length in zip(batch, batch_lengths):  # one at a time (see export.huggingface on padding)
        waves, lengths = wave[None, : int(length)], length[None]
        with torch.no_grad():
            enc, _ = model.encode(waves, lengths)
            ours = model.ctc.log_softmax(enc)
            inputs = processor(waves[0].numpy(), sampling_rate=16000, return_tensors="pt")
            theirs = torch.log_softmax(hf(inputs.input_values).logits, dim=-1)
        torch.testing.assert_close(theirs, ours, atol=5e-5, rtol=0)
        text = processor.batch_decode(theirs.argmax(-1))[0]
        assert len(text) > 5 and text == decoder.decode_batch([waves[0]])[0]


def test_what_transformers_cannot_express_is_refused_by_name(tmp_path, asr_exp):
    exp = student_dir(tmp_path / "fbank", False)
    description = yaml.safe_load((exp / "student.yaml").read_text())
    (exp / "student.yaml").write_text(yaml.safe_dump({**description, "frontend": "fbank"}))
    with pytest.raises(ExportError, match="the fbank front-end has no transformers equivalent"):
        export_hf(exp, tmp_path / "out")
    narrow = student_dir(tmp_path / "narrow", False)
    description["frontend_conf"]["output_dim"] = 32
    (narrow / "student.yaml").write_text(yaml.safe_dump(description))
    with pytest.raises(ExportError, match="output_dim 32 differs from the encoder's output_size 48"):
        export_hf(narrow, tmp_path / "out2")
    pruned = student_dir(tmp_path / "pruned", False)  # layers of different sizes (a pruned student)
    description = yaml.safe_load((pruned / "student.yaml").read_text())
    layers = description["encoder_conf"]["num_layers"]
    description["encoder_conf"]["layer_heads"] = [1] + [description["encoder_conf"]["attention_heads"]] * (layers - 1)
    (pruned / "student.yaml").write_text(yaml.safe_dump(description))
    with pytest.raises(ExportError, match=r"a pruned student's layers differ in size \(layer_heads \[1, "):
        export_hf(pruned, tmp_path / "out3")
    result = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.export_hf", str(exp), str(tmp_path / "cli")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "fbank front-end" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cli").exists() and not list(tmp_path.glob(".cli.*"))
