"""Shallow fusion of an ESPnet LM with CTC prefix beam search; the LM's checks (tokens, pickles); its data."""

import pickle

import numpy as np
import pytest
import torch
import yaml
from espnet2.lm.seq_rnn_lm import SequentialRNNLM

from espnet_distill.inference.ctc_search import Precomputed, beam_ids, ctc_beam_search, decode_log_probs
from espnet_distill.inference.lm import TokenListMismatch, lm_files, load_lm, perplexity
from espnet_distill.recipe.lm_data import excluded_sentences, leaked_sentences, write_lm_text, write_shapes
from espnet_distill.text.tokens import Tokenizer
from espnet_distill.utils.checkpoint import CheckpointError
from tests.conftest import Payload

TOKENS = ["<blank>", "<unk>", "<space>", "A", "B", "<sos/eos>"]
A, B, EOS = 3, 4, 5


def random_log_probs(frames=30, seed=1):
    logits = np.random.default_rng(seed).standard_normal((frames, len(TOKENS))) * 1.5
    logits[:, [1, EOS]] = -30
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def biased_lm(preferred: int, seed: int = 0) -> SequentialRNNLM:
    """ESPnet's LSTM LM whose next-token distribution is fixed by its output bias: ``preferred`` (and the end
    symbol) likely, everything else unlikely, whatever came before."""
    torch.manual_seed(seed)
    lm = SequentialRNNLM(len(TOKENS), unit=8, nlayers=1)
    with torch.no_grad():
        lm.decoder.weight.zero_()
        lm.decoder.bias.fill_(-6.0)
        lm.decoder.bias[preferred] = 2.0
        lm.decoder.bias[EOS] = 0.0
    return lm.eval()


def lm_log_prob(lm: SequentialRNNLM, ids) -> float:
    """log P(ids, <sos/eos>) under ``lm``, from its forward pass (not the beam search's scorer)."""
    x = torch.tensor([[EOS, *ids]])
    with torch.no_grad():
        y, _ = lm(x, None)
    logp = torch.log_softmax(y[0], dim=-1)
    return float(sum(logp[i, t] for i, t in enumerate([*ids, EOS])))


def test_weight_zero_is_plain_beam_search_and_greedy_refuses_an_lm():
    tokenizer = Tokenizer(TOKENS, "char", None)
    lm = biased_lm(A)
    for seed in range(3):
        log_probs = random_log_probs(seed=seed)
        plain = decode_log_probs(log_probs, tokenizer, 4)
        assert plain and decode_log_probs(log_probs, tokenizer, 4, lm, 0.0) == plain
    assert set(ctc_beam_search(Precomputed(), TOKENS, 4, lm, 0.0).scorers) == {"ctc"}
    assert set(ctc_beam_search(Precomputed(), TOKENS, 4, lm, 0.5).scorers) == {"ctc", "lm"}
    with pytest.raises(ValueError, match="needs the beam search"):
        decode_log_probs(random_log_probs(), tokenizer, 1, lm, 0.5)


def test_the_lm_decides_between_two_spellings_the_acoustics_barely_separate():
    # "A" a little more likely than "B" on the one frame that is not blank
    log_probs = np.full((6, len(TOKENS)), -30.0)
    log_probs[:, 0] = 0.0
    log_probs[2, [0, A, B]] = np.log([0.1, 0.48, 0.42])
    tokenizer = Tokenizer(TOKENS, "char", None)
    assert decode_log_probs(log_probs, tokenizer, 3) == "A"
    assert decode_log_probs(log_probs, tokenizer, 3, biased_lm(B), 0.5) == "B"
    assert decode_log_probs(log_probs, tokenizer, 3, biased_lm(A), 0.5) == "A"
    # a tiny weight cannot overturn the acoustics... unless the LM's preference is overwhelming
    assert decode_log_probs(log_probs, tokenizer, 3, biased_lm(B), 0.01) == "A"


def test_a_fused_hypothesis_scores_ctc_plus_the_weighted_lm_log_probability():
    lm = biased_lm(B, seed=3)
    with torch.no_grad():  # a history-dependent LM: random recurrent and output weights
        lm.decoder.weight.normal_(0, 1.0)
    search = ctc_beam_search(Precomputed(), TOKENS, 4, lm, 0.7)
    with torch.no_grad():
        hyps = search(x=torch.from_numpy(random_log_probs(seed=5)).float(), maxlenratio=0.0, minlenratio=0.0)
    best = hyps[0]
    ids = [int(t) for t in best.yseq[1:-1]]
    assert ids and float(best.scores["lm"]) == pytest.approx(lm_log_prob(lm, ids), abs=1e-4)
    assert float(best.score) == pytest.approx(float(best.scores["ctc"]) + 0.7 * float(best.scores["lm"]), abs=1e-4)
    assert beam_ids(search, torch.from_numpy(random_log_probs(seed=5)).float()) == ids


def write_lm_dir(path, lm, tokens, token_type="char"):
    """An LM exp dir as lm_train writes it: ESPnet's config.yaml and the model file (ESPnetLanguageModel's keys)."""
    path.mkdir(parents=True, exist_ok=True)
    config = dict(
        lm="seq_rnn",
        lm_conf=dict(unit=8, nlayers=1),
        model="lm",
        model_conf={},
        token_list=list(tokens),
        token_type=token_type,
        bpemodel=None,
        init=None,
    )
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save({f"lm.{k}": v for k, v in lm.state_dict().items()}, path / "valid.loss.ave.pth")
    return path


@pytest.mark.slow  # builds through ESPnet's LM task, whose import takes seconds
def test_an_lm_dir_loads_safely_and_its_tokens_must_be_the_asr_models(tmp_path):
    lm = biased_lm(A)
    lm_dir = write_lm_dir(tmp_path / "lm", lm, TOKENS)
    assert lm_files(lm_dir) == (lm_dir / "config.yaml", lm_dir / "valid.loss.ave.pth")
    loaded = load_lm(lm_dir, TOKENS, tmp_path / "asr" / "config.yaml")
    for key, value in lm.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    other = [*TOKENS[:3], "C", *TOKENS[4:]]
    with pytest.raises(TokenListMismatch) as error:
        load_lm(lm_dir, other, tmp_path / "asr" / "config.yaml")
    message = str(error.value)
    assert str(lm_dir / "config.yaml") in message and str(tmp_path / "asr" / "config.yaml") in message
    assert "id 3 is 'A' in the LM and 'C' in the ASR model" in message
    with pytest.raises(TokenListMismatch, match="6 tokens.*5 tokens"):
        load_lm(lm_dir, TOKENS[:-1], "tokens.txt")
    with pytest.raises(FileNotFoundError, match="has the LM's training finished"):
        load_lm(tmp_path, TOKENS, "x")
    config = yaml.safe_load((lm_dir / "config.yaml").read_text())
    for key, value in (("lm_conf", {"unit": 8, "nlayers": 1, "no_such_key": 1}), ("lm", "no_such_lm")):
        (lm_dir / "config.yaml").write_text(yaml.safe_dump({**config, key: value}))
        with pytest.raises(CheckpointError, match=f"{lm_dir / 'config.yaml'}: cannot build the LM"):
            load_lm(lm_dir, TOKENS, "x")


@pytest.mark.slow  # builds through ESPnet's LM task, whose import takes seconds
def test_an_lm_file_that_would_run_code_is_refused_by_name(tmp_path):
    lm_dir = write_lm_dir(tmp_path / "lm", biased_lm(A), TOKENS)
    marker = tmp_path / "ran"
    (lm_dir / "evil.pth").write_bytes(pickle.dumps({"lm.decoder.bias": Payload(marker)}))
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_lm(lm_dir / "evil.pth", TOKENS, "asr/config.yaml")
    assert not marker.exists()


def test_perplexity_is_the_exponentiated_mean_nll_with_the_end_symbols():
    lm = biased_lm(A)
    sentences = [[A, A, B], [B], [A, 2, A]]
    value, count = perplexity(lm, sentences, len(TOKENS), batch_size=2)
    expected = np.exp(-sum(lm_log_prob(lm, ids) for ids in sentences) / count)
    assert count == 3 + 1 + 1 + 1 + 3 + 1 and value == pytest.approx(expected, rel=1e-5)


def test_the_lm_text_holds_no_dev_or_test_sentence(tmp_path):
    source = tmp_path / "sentences.txt"
    source.write_text("ONE TWO THREE\nA DEV SENTENCE\n\n  FOUR   FIVE \nA TEST SENTENCE\nSIX\n")
    dev, test, train = tmp_path / "dev_text", tmp_path / "test_text", tmp_path / "train_text"
    dev.write_text("d1 A DEV SENTENCE\n")
    test.write_text("t1 A  TEST SENTENCE\n")
    train.write_text("u1 SEVEN EIGHT\nu2 A DEV SENTENCE\n")
    out = tmp_path / "lm_train" / "text"
    counts = write_lm_text(out, [source], [train], [dev, test])
    assert counts["sentences"] == 4 and counts["excluded"] == 3
    lines = out.read_text().splitlines()
    assert [line.split(maxsplit=1)[1] for line in lines] == ["ONE TWO THREE", "FOUR FIVE", "SIX", "SEVEN EIGHT"]
    assert leaked_sentences(out, excluded_sentences([dev, test])) == []
    with open(out, "a") as f:
        f.write("lm999999999 A DEV SENTENCE\n")
    assert leaked_sentences(out, excluded_sentences([dev, test])) == ["A DEV SENTENCE"]
    shapes = tmp_path / "shape"
    write_shapes(out, shapes, Tokenizer([*TOKENS[:-1], "E", "O", "<sos/eos>"], "char", None))
    assert shapes.read_text().splitlines()[:2] == ["lm000000001 13,8", "lm000000002 9,8"]


@pytest.mark.parametrize(
    "main_module, argv",
    [
        ("asr_inference", ["--asr_exp", "exp/x", "--wav_scp", "w.scp", "--output_dir", "out", "--lm_weight", "0.5"]),
        ("transcribe", ["--model", "exp/x", "--beam_size", "4", "--lm_weight", "0.5", "a.wav"]),
        ("transcribe", ["--model", "exp/x", "--lm", "exp/lm", "--lm_weight", "0.5", "a.wav"]),  # greedy
    ],
)
def test_an_lm_weight_without_an_lm_or_a_beam_is_a_usage_error(main_module, argv, capsys):
    import importlib

    main = importlib.import_module(f"espnet_distill.bin.{main_module}").main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "--lm_weight needs --lm" in capsys.readouterr().err
