"""The teacher-forward benchmark: both forwards on both batches, figures that parse."""

import torch
from torchaudio.models import wav2vec2_model

from espnet_distill.benchmark.teacher_forward import compare, padded_batch, render
from tests.conftest import TINY_ENCODER


def tiny_hubert():
    torch.manual_seed(0)
    return wav2vec2_model(**TINY_ENCODER, aux_num_out=None).eval()


def test_padded_batch_holds_each_utterance_at_its_length():
    batch = padded_batch([torch.ones(1, 5), torch.full((1, 3), 2.0)])
    assert batch["lengths"].tolist() == [5, 3]
    assert batch["speech"].tolist() == [[1.0] * 5, [2.0, 2.0, 2.0, 0.0, 0.0]]


def test_compare_times_both_forwards_on_both_batches():
    waves = [torch.randn(1, 4000), torch.randn(1, 2500)]
    results = compare(tiny_hubert(), waves, repeats=2)
    assert sorted(results) == ["no padding", "padded"]
    for row in results.values():
        assert sorted(row) == ["espnet_distill teacher", "torchaudio extract_features"]
        assert all(seconds > 0 for seconds in row.values())
    lines = render(results, {"padded": 0.4, "no padding": 0.3})
    assert lines[0].startswith("| batch | audio s |") and len(lines) == 4
    ratio = float(lines[2].split("|")[-2])
    assert (
        abs(ratio - results["padded"]["espnet_distill teacher"] / results["padded"]["torchaudio extract_features"])
        < 0.01
    )
