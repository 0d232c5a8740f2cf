"""The teacher-forward benchmark: both forwards on both batches, figures that parse."""

import torch
from torchaudio.models import wav2vec2_model

from espnet_distill.benchmark.teacher_forward import compare, padded_batch, render


def tiny_hubert():
    torch.manual_seed(0)
    return wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2), (8, 2, 2)],
        extractor_conv_bias=False,
        encoder_embed_dim=16,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8,
        encoder_pos_conv_groups=2,
        encoder_num_layers=2,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=32,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    ).eval()


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
