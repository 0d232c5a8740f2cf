"""ctc_search: one greedy collapse and one beam search for data-dir decoding, transcribe and the parity check."""

import numpy as np
import pytest
import torch

from espnet_distill.inference.ctc_search import (
    Precomputed,
    beam_width,
    collapse,
    ctc_beam_search,
    decode_log_probs,
    greedy_ids,
)
from espnet_distill.text.tokens import Tokenizer

TOKENS = ["<blank>", "<unk>", "<space>", "A", "B", "C", "<sos/eos>"]


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([0, 3, 3, 0, 3, 4, 4, 2, 0, 0]) == [3, 3, 4, 2]
    assert collapse([3, 0, 0, 3]) == [3, 3] and collapse([0, 0]) == [] and collapse([]) == []


def test_greedy_ids_reads_only_the_valid_frames():
    best = [3, 3, 0, 4, 5, 5]
    scores = np.full((len(best), len(TOKENS)), -9.0)
    scores[np.arange(len(best)), best] = 0.0
    assert greedy_ids(scores) == [3, 4, 5] and greedy_ids(scores, 4) == [3, 4]


def test_the_beam_is_at_most_the_vocabulary_less_the_blank():
    assert beam_width(4, 7) == 4 and beam_width(6, 7) == 6 and beam_width(7, 7) == 6 and beam_width(50, 7) == 6
    search = ctc_beam_search(Precomputed(), TOKENS, 50)
    assert search.beam_size == 6 and set(search.scorers) == {"ctc"}  # CTC prefix scoring alone


def random_log_probs(frames=40, seed=1):
    logits = np.random.default_rng(seed).standard_normal((frames, len(TOKENS))) * 1.5
    logits[:, [1, 6]] = -30
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def test_a_beam_wider_than_the_vocabulary_searches_as_the_widest_useful_one():
    tokenizer = Tokenizer(TOKENS, "char", None)
    log_probs = random_log_probs()
    widest = decode_log_probs(log_probs, tokenizer, len(TOKENS) - 1)
    assert decode_log_probs(log_probs, tokenizer, 50) == widest and set(widest) <= set("ABC ") and widest


TINY = {
    "frontend": "wav_cnn",
    "frontend_conf": {
        "conv_layers": "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2",
        "extractor_mode": "group_norm",
        "conv_bias": False,
        "output_dim": 16,
    },
    "encoder": "transformer",
    "encoder_conf": {
        "output_size": 16,
        "num_layers": 1,
        "attention_heads": 2,
        "ffn_dim": 16,
        "pos_conv_kernel": 8,
        "pos_conv_groups": 4,
    },
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random tiny wav_cnn student with a CTC layer loud enough to emit text."""
    from espnet_distill.asr.build import write_random_ctc_exp
    from espnet_distill.inference.decode import load_asr_model

    exp = write_random_ctc_exp(TINY, TOKENS, tmp_path_factory.mktemp("ctc_search") / "exp")
    model, _ = load_asr_model(exp, "model.pth")
    with torch.no_grad():
        model.ctc.ctc_lo.weight.mul_(30.0)
        model.ctc.ctc_lo.bias[[1, 6]] = -30.0
    return model


@pytest.mark.parametrize("beam_size", [1, 3, 50])
def test_data_dir_decoding_and_transcribe_give_the_same_text(tiny_model, beam_size):
    """CTCDecoder searches the encoder output (ESPnet's CTC module scores it), transcribe the log-probabilities
    of the same forward: one search, one text."""
    from espnet_distill.inference.decode import CTCDecoder, DecodeOptions
    from espnet_distill.inference.forward import CTCInference

    model = tiny_model
    tokenizer = Tokenizer(TOKENS, "char", None)
    waves = [torch.randn(16000, generator=torch.Generator().manual_seed(i)) * 0.1 for i in range(2)]
    decoded = CTCDecoder(model, tokenizer, DecodeOptions(beam_size=beam_size)).decode_batch(waves)
    forward = CTCInference(model).eval()
    transcribed = []
    for wave in waves:
        with torch.no_grad():
            out, lengths = forward(wave[None], torch.tensor([len(wave)]))
        transcribed.append(decode_log_probs(out[0, : int(lengths[0])].numpy(), tokenizer, beam_size))
    assert decoded == transcribed and all(len(text) > 3 for text in decoded)
