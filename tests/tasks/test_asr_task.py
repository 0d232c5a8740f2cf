"""CTC fine-tuning and decoding at the tiny size: teacher export, init, freezing, bad audio."""

import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.distill.export import export_teacher_as_student, load_student
from espnet_distill.inference.decode import CTCDecoder, DecodeOptions, load_asr_model
from espnet_distill.recipe.speech_shape import write_speech_shape
from espnet_distill.tasks.asr import ASRTask
from espnet_distill.teacher import load_teacher
from espnet_distill.text.tokens import Tokenizer, char_tokens, transcripts, write_token_list
from espnet_distill.utils.checkpoint import load_checkpoint
from espnet_distill.utils.progress import read_progress
from tests.conftest import tiny_batch, write_wav

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

FINETUNE = """
frontend: wav_cnn
encoder: transformer
specaug: specaug
specaug_conf: {apply_time_warp: false, freq_mask_width_range: [0, 8], num_freq_mask: 1, time_mask_width_ratio_range: [0.0, 0.05], num_time_mask: 2}
batch_type: numel
batch_bins: 150000
optim: adamw
optim_conf: {lr: 0.001}
num_workers: 0
best_model_criterion: [[valid, cer_ctc, min]]
keep_nbest_models: 1
"""


@pytest.fixture(scope="module")
def setup(tiny_corpus, tiny_teacher_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("asr")
    (root / "teacher.yaml").write_text(
        yaml.safe_dump({"teacher": "torchaudio", "teacher_conf": {"path": str(tiny_teacher_path)}})
    )
    export_teacher_as_student(root / "teacher.yaml", root / "teacher_student")
    write_token_list(root / "tokens.txt", char_tokens(transcripts(tiny_corpus["data"] / "train" / "text")))
    for name in ("train", "dev"):
        write_speech_shape(tiny_corpus["data"] / name, root / "shapes" / name / "speech_shape")
    (root / "finetune.yaml").write_text(FINETUNE)
    return root


def asr_train_args(setup, tiny_corpus, out_dir, *extra):
    """Options of asr_train for the tiny fine-tuning (two epochs of three steps); --output_dir comes last."""
    data = tiny_corpus["data"]
    return [
        "--config",
        str(setup / "finetune.yaml"),
        "--init_student",
        str(setup / "teacher_student"),
        "--token_list",
        str(setup / "tokens.txt"),
        "--token_type",
        "char",
        "--train_data_path_and_name_and_type",
        f"{data}/train/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type",
        f"{data}/train/text,text,text",
        "--train_shape_file",
        str(setup / "shapes" / "train" / "speech_shape"),
        "--valid_data_path_and_name_and_type",
        f"{data}/dev/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type",
        f"{data}/dev/text,text,text",
        "--valid_shape_file",
        str(setup / "shapes" / "dev" / "speech_shape"),
        "--max_epoch",
        "2",
        "--num_iters_per_epoch",
        "3",
        *extra,
        "--output_dir",
        str(out_dir),
    ]


def train(setup, tiny_corpus, out_dir, *extra):
    cmd = [sys.executable, "-m", "espnet_distill.bin.asr_train", *asr_train_args(setup, tiny_corpus, out_dir, *extra)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


def with_random_ctc(state, blocked=-30.0):
    """A fine-tuned model's ``state`` with a random CTC layer whose bias is ``blocked`` for <unk> (token 1)
    and <sos/eos> (the last), 0 elsewhere: the tiny fine-tuning's CTC emits blanks only, this one text.
    (-30: never on the best path; -1e4 would put log-probs where float32 steps are 1e-3.)"""
    weight = state["ctc.ctc_lo.weight"]
    generator = torch.Generator().manual_seed(0)
    state["ctc.ctc_lo.weight"] = torch.randn(weight.shape, generator=generator) * 3 / weight.shape[1] ** 0.5
    bias = torch.zeros_like(state["ctc.ctc_lo.bias"])
    bias[1] = bias[-1] = blocked
    state["ctc.ctc_lo.bias"] = bias
    return state


def test_the_exported_teacher_is_the_teacher(setup, tiny_teacher_path, tiny_corpus):
    teacher = load_teacher("torchaudio", path=str(tiny_teacher_path))
    frontend, encoder, description = load_student(setup / "teacher_student")
    assert description["encoder_conf"]["num_layers"] == 3 and description["source"] == "teacher"
    waves, lengths = tiny_batch(tiny_corpus, 1)
    with torch.no_grad():
        feats, flens = frontend(waves, lengths)
        ours, _, _ = encoder(feats, flens)
        reference = teacher(waves, lengths).hidden_states[-1]  # post-LN: the last layer is the output
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


def test_finetuning_starts_from_the_student_and_freezing_holds_the_encoder(setup, tiny_corpus, tmp_path):
    train(setup, tiny_corpus, tmp_path / "frozen", "--model_conf", "freeze_encoder_steps=100")
    progress = read_progress(tmp_path / "frozen")  # ESPnet's trainer reported its steps: 2 epochs of 3
    assert (progress.step, progress.total, progress.done) == (6, 6, True)
    source = json.loads((tmp_path / "frozen" / "student_source.json").read_text())  # what RESULTS.md reads
    assert (source["kind"], source["frontend"], source["structure"]["num_layers"]) == ("teacher", "wav_cnn", 3)
    trained = load_checkpoint(tmp_path / "frozen" / "latest.pth")
    initial = load_checkpoint(setup / "teacher_student" / "student.pth")
    for key, value in initial.items():  # frozen for all 6 steps: still the teacher's weights
        torch.testing.assert_close(trained[key], value, msg=key)
    config = yaml.safe_load((tmp_path / "frozen" / "config.yaml").read_text())
    assert config["encoder_conf"]["num_layers"] == 3 and config["token_list"][0] == "<blank>"
    # Without freezing the encoder moves; from scratch it starts elsewhere.
    train(setup, tiny_corpus, tmp_path / "scratch", "--init_student_weights", "false")
    scratch = load_checkpoint(tmp_path / "scratch" / "latest.pth")
    assert json.loads((tmp_path / "scratch" / "student_source.json").read_text())["kind"] == "scratch"
    key = "encoder.transformer.layers.0.feed_forward.output_dense.weight"
    assert (scratch[key] - initial[key]).abs().max() > 1e-2


def test_decoding_greedy_and_beam_and_bad_audio(setup, tiny_corpus, tmp_path, caplog):
    exp = tmp_path / "exp"
    train(setup, tiny_corpus, exp)
    model, args = load_asr_model(exp)
    tokenizer = Tokenizer(args.token_list, args.token_type, args.bpemodel)
    wav_scp = dict(list(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp").items())[:3])
    greedy = dict(CTCDecoder(model, tokenizer, DecodeOptions(beam_size=1)).decode(wav_scp))
    beam = dict(CTCDecoder(model, tokenizer, DecodeOptions(beam_size=3)).decode(wav_scp))
    assert set(greedy) == set(beam) == set(wav_scp)
    bad = {
        "empty": write_wav(tmp_path / "empty.wav", np.zeros(0)),
        "short": write_wav(tmp_path / "short.wav", np.ones(300)),
        "rate8k": write_wav(tmp_path / "rate8k.wav", np.ones(8000), rate=8000),
    }
    messages = {
        "empty": "holds no samples",
        "short": "shorter than the front-end's receptive field (400 samples)",
        "rate8k": "sampled at 8000 Hz; expected 16000 Hz",
    }
    for name, path in bad.items():
        with pytest.raises(AudioError, match=f"utterance {name!r}.*{re.escape(messages[name])}"):
            dict(CTCDecoder(model, tokenizer, DecodeOptions()).decode({**wav_scp, name: str(path)}))
    # Several bad utterances: each is named, then nothing is decoded.
    with caplog.at_level(logging.ERROR):
        with pytest.raises(AudioError, match="3 of 6 utterances cannot be decoded .*--skip_bad_utterances true"):
            dict(
                CTCDecoder(model, tokenizer, DecodeOptions()).decode({**wav_scp, **{k: str(v) for k, v in bad.items()}})
            )
    for name, message in messages.items():
        assert any(f"utterance {name!r}" in r.getMessage() and message in r.getMessage() for r in caplog.records)
    skipped = dict(
        CTCDecoder(model, tokenizer, DecodeOptions(skip_bad_utterances=True)).decode(
            {**wav_scp, **{k: str(v) for k, v in bad.items()}}
        )
    )
    assert all(skipped[name] == "" for name in bad) and {u: skipped[u] for u in wav_scp} == greedy


def test_the_config_must_name_the_students_components(setup, tmp_path):
    description = yaml.safe_load((setup / "teacher_student" / "student.yaml").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "student.yaml").write_text(yaml.safe_dump({**description, "frontend": "fbank"}))
    args = ASRTask.get_parser().parse_args(
        [
            "--token_list",
            str(setup / "tokens.txt"),
            "--token_type",
            "char",
            "--init_student",
            str(other),
            "--output_dir",
            str(tmp_path),
        ]
    )
    with pytest.raises(ValueError, match="names frontend: wav_cnn but .* holds a fbank frontend"):
        ASRTask.build_model(args)


def gradients_after_training_steps(setup, tiny_corpus, tmp_path, *extra):
    args = ASRTask.get_parser().parse_args(
        [
            "--token_list",
            str(setup / "tokens.txt"),
            "--token_type",
            "char",
            "--init_student",
            str(setup / "teacher_student"),
            "--model_conf",
            "freeze_frontend_steps=-1",
            "--output_dir",
            str(tmp_path),
            *extra,
        ]
    )
    model = ASRTask.build_model(args).train()
    waves, lengths = tiny_batch(tiny_corpus, 2)
    text, text_lengths = torch.tensor([[3, 4, 5], [5, 4, -1]]), torch.tensor([3, 2])
    for _ in range(3):
        model(waves, lengths, text, text_lengths)[0].backward()
    return model


def test_a_frontend_frozen_for_all_of_training_gets_no_gradients(setup, tiny_corpus, tmp_path):
    model = gradients_after_training_steps(setup, tiny_corpus, tmp_path)
    assert all(p.grad is None for p in model.frontend.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.ctc.parameters())
    assert sum(p.grad is not None for p in model.encoder.parameters()) == sum(1 for _ in model.encoder.parameters())
    # From scratch nothing is frozen: a frozen random CNN would be no reference.
    scratch = gradients_after_training_steps(setup, tiny_corpus, tmp_path, "--init_student_weights", "false")
    assert all(p.grad is not None for p in scratch.frontend.parameters())
