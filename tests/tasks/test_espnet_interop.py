"""ESPnet's own tools on a model fine-tuned here: build_model_from_file, Speech2Text, its CLI, packing."""

import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import yaml

from espnet_distill.bin.pack_model import PackError, pack_model
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.espnet_interop import espnet_config
from espnet_distill.inference.decode import CTCDecoder, DecodeOptions, load_asr_model, read_checked
from espnet_distill.text.tokens import Tokenizer
from tests.conftest import lm_with_tokens
from tests.tasks.test_asr_task import setup, train, with_random_ctc  # noqa: F401  (the tiny fine-tuning's fixture)

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

BEAM = 3


@pytest.fixture(scope="module")
def exp(setup, tiny_corpus, tmp_path_factory):  # noqa: F811
    """A tiny fine-tuned exp dir, plus ``noisy.pth``: its weights with a random CTC layer.

    Six training steps leave CTC emitting blanks only; the random layer makes
    every decoder produce long hypotheses, so that equal hypotheses mean something.
    """
    out = tmp_path_factory.mktemp("espnet") / "asr_tiny"
    train(setup, tiny_corpus, out)
    state = torch.load(out / "valid.cer_ctc.ave.pth", weights_only=True)
    # No <unk> (this project drops it from text, ESPnet writes it) and no <sos/eos>, whatever the decoder.
    torch.save(with_random_ctc(state, blocked=-1e4), out / "noisy.pth")
    return out


@pytest.fixture(scope="module")
def test_audio(tiny_corpus):
    return dict(list(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp").items())[:4])


@pytest.fixture(scope="module")
def ours(exp, test_audio):
    model, args = load_asr_model(exp, "noisy.pth")
    decoder = CTCDecoder(
        model, Tokenizer(args.token_list, args.token_type, args.bpemodel), DecodeOptions(beam_size=BEAM)
    )
    hyps = dict(decoder.decode(test_audio))
    assert all(len(h) > 5 for h in hyps.values()), hyps  # the random CTC layer emits text
    return hyps


def espnet_cli(config, model_file, wav_scp, output_dir, *options):
    """ESPnet's decoding CLI behind this project's checks (``espnet_asr_inference``) at CTC weight 1."""
    cmd = [sys.executable, "-m", "espnet_distill.bin.espnet_asr_inference", "--asr_train_config", str(config)]
    cmd += ["--asr_model_file", str(model_file), "--ctc_weight", "1.0", *options]
    cmd += ["--data_path_and_name_and_type", f"{wav_scp},speech,sound", "--output_dir", str(output_dir)]
    return subprocess.run(cmd, capture_output=True, text=True)


def espnet_hyps(speech2text, test_audio):
    out = {}
    for utt, spec in test_audio.items():
        wave = read_checked(utt, spec, 400)
        out[utt] = speech2text(wave.numpy())[0][0]
    return out


def test_config_yaml_is_self_contained_and_in_espnet_form(exp, tmp_path, monkeypatch):
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder"] == "student_transformer" and config["model"] == "ctc_student"
    assert config["init_student"] is None and config["input_size"] is None and config["normalize"] is None
    assert config["encoder_conf"]["num_layers"] == 3 and config["frontend_conf"]["output_dim"] == 64
    # ESPnet's own task builds it from anywhere: nothing points back to the student's exp dir.
    elsewhere = tmp_path / "moved"
    shutil.copytree(exp, elsewhere)
    monkeypatch.chdir(tmp_path)
    from espnet2.tasks.asr import ASRTask as ESPnetASRTask

    model, _ = ESPnetASRTask.build_model_from_file(elsewhere / "config.yaml", elsewhere / "noisy.pth")
    mine, _ = load_asr_model(exp, "noisy.pth")
    assert type(model) is type(mine)
    theirs = model.state_dict()
    assert theirs.keys() == mine.state_dict().keys()
    for key, value in mine.state_dict().items():
        torch.testing.assert_close(theirs[key], value, rtol=0, atol=0, msg=key)


def test_a_config_written_before_the_espnet_names_still_loads(exp, tmp_path):
    old = yaml.safe_load((exp / "config.yaml").read_text())
    old.update(encoder="transformer", init_student="exp/distill_gone")
    for key in ("model", "input_size", "normalize", "normalize_conf", "preencoder", "postencoder", "decoder", "init"):
        old.pop(key, None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    shutil.copy(exp / "noisy.pth", tmp_path / "noisy.pth")
    mine, _ = load_asr_model(tmp_path, "noisy.pth")  # this project's loader reads the old form
    converted = espnet_config(old)
    assert converted["encoder"] == "student_transformer" and converted["model"] == "ctc_student"
    assert converted["init_student"] is None


def test_speech2text_decodes_as_this_project_does(exp, ours, test_audio):
    from espnet2.bin.asr_inference import Speech2Text

    import espnet_distill  # noqa: F401

    speech2text = Speech2Text(
        asr_train_config=exp / "config.yaml",
        asr_model_file=exp / "noisy.pth",
        ctc_weight=1.0,
        lm_weight=0.0,
        beam_size=BEAM,
        nbest=1,
    )
    assert espnet_hyps(speech2text, test_audio) == ours


def test_espnet_asr_inference_cli_decodes_as_this_project_does(exp, ours, test_audio, tmp_path):
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("".join(f"{u} {s}\n" for u, s in sorted(test_audio.items())))
    result = espnet_cli(
        str(exp / "config.yaml"),
        str(exp / "noisy.pth"),
        wav_scp,
        str(tmp_path / "out"),
        "--lm_weight",
        "0",
        "--beam_size",
        str(BEAM),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    decoded = read_kaldi_map(tmp_path / "out" / "1best_recog" / "text")
    assert decoded == ours


def test_espnet_cli_refuses_a_model_file_that_would_run_code(exp, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Evil()}))
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("")
    result = espnet_cli(str(exp / "config.yaml"), str(tmp_path / "evil.pth"), wav_scp, str(tmp_path / "out"))
    assert result.returncode != 0 and "pwned" not in result.stdout
    assert "evil.pth" in result.stderr and "refus" in result.stderr


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_a_packed_model_unpacks_into_speech2text(exp, ours, test_audio, tmp_path, monkeypatch, suffix):
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    import espnet_distill  # noqa: F401

    archive = pack_model(exp, tmp_path / f"tiny{suffix}", checkpoint="noisy.pth")
    monkeypatch.chdir(tmp_path)  # unpack from another directory than the one packed from
    kwargs = unpack(archive, tmp_path / "unpacked")
    assert set(kwargs) == {"asr_train_config", "asr_model_file"}
    config = yaml.safe_load(open(kwargs["asr_train_config"]))
    assert config["token_list"][0] == "<blank>" and config["init_student"] is None
    speech2text = Speech2Text(**kwargs, ctc_weight=1.0, lm_weight=0.0, beam_size=BEAM, nbest=1)
    assert espnet_hyps(speech2text, test_audio) == ours


def test_pack_model_carries_the_bpe_model_and_names_missing_files(exp, tmp_path):
    bpe = tmp_path / "recipe" / "data" / "token_list" / "bpe" / "bpe.model"
    bpe.parent.mkdir(parents=True)
    bpe.write_bytes(b"sentencepiece bytes")
    exp_bpe = tmp_path / "recipe" / "exp" / "asr_bpe"
    shutil.copytree(exp, exp_bpe)
    config = yaml.safe_load((exp_bpe / "config.yaml").read_text())
    config.update(token_type="bpe", bpemodel="data/token_list/bpe/bpe.model")  # relative to the recipe dir
    (exp_bpe / "config.yaml").write_text(yaml.safe_dump(config))
    archive = pack_model(exp_bpe, tmp_path / "bpe.zip", checkpoint="noisy.pth")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {
            "meta.yaml",
            "exp/asr_bpe/config.yaml",
            "exp/asr_bpe/noisy.pth",
            "exp/asr_bpe/bpe.model",
            "exp/asr_bpe/tokens.txt",
        } <= names
        packed = yaml.safe_load(z.read("exp/asr_bpe/config.yaml"))
        assert (
            packed["bpemodel"] == "exp/asr_bpe/bpe.model" and z.read("exp/asr_bpe/bpe.model") == b"sentencepiece bytes"
        )
    from espnet2.main_funcs.pack_funcs import unpack

    unpacked = yaml.safe_load(open(unpack(archive, tmp_path / "u")["asr_train_config"]))
    assert open(unpacked["bpemodel"], "rb").read() == b"sentencepiece bytes"
    bpe.unlink()
    with pytest.raises(PackError, match="bpemodel data/token_list/bpe/bpe.model is not found"):
        pack_model(exp_bpe, tmp_path / "again.zip", checkpoint="noisy.pth")
    assert not (tmp_path / "again.zip").exists()
    with pytest.raises(PackError, match="no_such.pth: no such model file"):
        pack_model(exp, tmp_path / "x.zip", checkpoint="no_such.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match="empty/config.yaml: cannot read the training config"):
        pack_model(tmp_path / "empty", tmp_path / "x.zip")


REGISTERED = """
from espnet2.tasks.asr import encoder_choices, frontend_choices, model_choices
from espnet_distill.asr.model import CTCASRModel
from espnet_distill.student.encoder import TransformerStudentEncoder
assert encoder_choices.get_class("student_transformer") is TransformerStudentEncoder
assert encoder_choices.get_class("transformer") is not TransformerStudentEncoder  # ESPnet's own stays
assert model_choices.get_class("ctc_student") is CTCASRModel
assert frontend_choices.get_class("wav_cnn").__name__ == "WavCNNFrontend"
assert frontend_choices.get_class("fbank").__name__ == "FbankFrontend"
"""


def test_import_registers_lazily_in_either_order():
    lazy = "import sys, espnet_distill\nassert 'espnet2.tasks.asr' not in sys.modules, 'imported too early'\n"
    eager = "import espnet2.tasks.asr, espnet_distill\n"
    for prelude in (lazy, eager):
        result = subprocess.run([sys.executable, "-c", prelude + REGISTERED], capture_output=True, text=True)
        assert result.returncode == 0, (prelude, result.stderr[-2000:])


LM_WEIGHT = 1.5


@pytest.fixture(scope="module")
def ours_with_lm(exp, test_audio, tiny_lm, ours):
    from espnet_distill.inference.lm import load_lm

    model, args = load_asr_model(exp, "noisy.pth")
    lm = load_lm(tiny_lm[0], args.token_list, exp / "config.yaml")
    options = DecodeOptions(beam_size=BEAM, lm_weight=LM_WEIGHT)
    hyps = dict(
        CTCDecoder(model, Tokenizer(args.token_list, args.token_type, args.bpemodel), options, lm).decode(test_audio)
    )
    assert hyps != ours  # the LM changes what the random CTC layer spells
    return hyps


def test_speech2text_with_the_lm_decodes_as_this_project_does(exp, ours_with_lm, test_audio, tiny_lm):
    from espnet2.bin.asr_inference import Speech2Text

    import espnet_distill  # noqa: F401

    lm_dir = tiny_lm[0]
    speech2text = Speech2Text(
        asr_train_config=exp / "config.yaml",
        asr_model_file=exp / "noisy.pth",
        lm_train_config=lm_dir / "config.yaml",
        lm_file=lm_dir / "valid.loss.ave.pth",
        ctc_weight=1.0,
        lm_weight=LM_WEIGHT,
        beam_size=BEAM,
        nbest=1,
    )
    assert espnet_hyps(speech2text, test_audio) == ours_with_lm


def test_espnet_cli_refuses_an_lm_of_other_tokens_naming_both_files(exp, tiny_lm, tmp_path):
    lm_with_tokens(tiny_lm[0], tmp_path / "lm", lambda tokens: tokens[:-2] + tokens[-1:])
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("")
    result = espnet_cli(
        str(exp / "config.yaml"),
        str(exp / "noisy.pth"),
        wav_scp,
        str(tmp_path / "out"),
        "--lm_train_config",
        str(tmp_path / "lm" / "config.yaml"),
        "--lm_file",
        str(tmp_path / "lm" / "valid.loss.ave.pth"),
        "--lm_weight",
        "0.5",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert str(tmp_path / "lm" / "config.yaml") in result.stderr and str(exp / "config.yaml") in result.stderr
    assert "train the LM on the ASR model's token list" in result.stderr
    assert not (tmp_path / "out" / "1best_recog").exists()


def test_a_model_packed_with_its_lm_unpacks_into_speech2text(exp, ours_with_lm, test_audio, tiny_lm, tmp_path):
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    import espnet_distill  # noqa: F401

    archive = pack_model(exp, tmp_path / "with_lm.zip", checkpoint="noisy.pth", lm=tiny_lm[0])
    kwargs = unpack(archive, tmp_path / "unpacked")
    assert set(kwargs) == {"asr_train_config", "asr_model_file", "lm_train_config", "lm_file"}
    speech2text = Speech2Text(**kwargs, ctc_weight=1.0, lm_weight=LM_WEIGHT, beam_size=BEAM, nbest=1)
    assert espnet_hyps(speech2text, test_audio) == ours_with_lm
    bad = lm_with_tokens(tiny_lm[0], tmp_path / "bad_lm", lambda tokens: tokens[::-1])
    with pytest.raises(PackError, match="is not the ASR model's"):
        pack_model(exp, tmp_path / "bad.zip", checkpoint="noisy.pth", lm=bad)
    assert not (tmp_path / "bad.zip").exists()
