"""Student presets scaled to the teacher, and prediction heads."""

import pytest
import torch

from espnet_distill.student.heads import LayerToLayerHeads, MultiTaskHeads, thirds
from espnet_distill.student.presets import TeacherShape, preset_encoder_conf, resolve_encoder_conf

HUBERT_BASE = TeacherShape(
    num_layers=12,
    width=768,
    attention_heads=12,
    ffn_dim=3072,
    pos_conv_kernel=128,
    pos_conv_groups=16,
    layer_norm_first=False,
)
MINI = TeacherShape(
    num_layers=4,
    width=256,
    attention_heads=4,
    ffn_dim=1024,
    pos_conv_kernel=64,
    pos_conv_groups=8,
    layer_norm_first=True,
)


def test_presets_at_the_papers_scale():
    wide = preset_encoder_conf("shallow_wide", HUBERT_BASE)
    assert (wide["num_layers"], wide["output_size"], wide["ffn_dim"], wide["attention_heads"]) == (2, 768, 3072, 12)
    thin = preset_encoder_conf("deep_thin", HUBERT_BASE)
    assert (thin["num_layers"], thin["output_size"], thin["ffn_dim"], thin["attention_heads"]) == (12, 480, 480, 12)
    assert thin["output_size"] % thin["pos_conv_groups"] == 0


def test_presets_scale_to_the_mini_teacher_and_explicit_keys_win():
    thin = resolve_encoder_conf({"preset": "deep_thin", "dropout": 0.0}, MINI)
    assert (thin["num_layers"], thin["output_size"], thin["ffn_dim"], thin["attention_heads"]) == (4, 160, 160, 4)
    assert thin["layer_norm_first"] is True and thin["dropout"] == 0.0
    assert resolve_encoder_conf({"preset": "shallow_wide", "num_layers": 3}, MINI)["num_layers"] == 3
    with pytest.raises(ValueError, match="unknown student preset"):
        resolve_encoder_conf({"preset": "tall"}, MINI)


def test_multitask_heads_target_thirds_of_the_teacher():
    assert thirds(12) == [4, 8, 12] and thirds(4) == [1, 3, 4]
    heads = MultiTaskHeads(student_dim=8, teacher_dim=6, num_student_layers=2, num_teacher_layers=12)
    states = [torch.randn(2, 5, 8) for _ in range(3)]
    out = heads(states)
    assert [layer for layer, _ in out] == [4, 8, 12] and all(p.shape == (2, 5, 6) for _, p in out)
    torch.testing.assert_close(out[0][1], heads.heads[0](states[-1]))  # all from the last layer


def test_multitask_heads_are_distilhuberts_mlp_or_a_single_linear():
    mlp = MultiTaskHeads(student_dim=8, teacher_dim=6, num_student_layers=2, num_teacher_layers=12, inter_dim=10)
    first = mlp.heads[0]
    x = torch.randn(2, 5, 8)
    expected = torch.nn.functional.linear(
        torch.nn.functional.gelu(torch.nn.functional.linear(x, first[0].weight, first[0].bias)),
        first[2].weight,
        first[2].bias,
    )
    torch.testing.assert_close(first(x), expected)
    assert sum(p.numel() for p in mlp.parameters()) == 3 * ((8 * 10 + 10) + (10 * 6 + 6))
    # At paper scale: 3 targets, 768 -> 768 (GELU) -> 768: DistilHuBERT's 3.54 M.
    paper = MultiTaskHeads(student_dim=768, teacher_dim=768, num_student_layers=2, num_teacher_layers=12)
    assert sum(p.numel() for p in paper.parameters()) == 3 * 2 * (768 * 768 + 768) == 3_543_552
    linear = MultiTaskHeads(
        student_dim=768, teacher_dim=768, num_student_layers=2, num_teacher_layers=12, kind="linear"
    )
    assert sum(p.numel() for p in linear.parameters()) == 3 * (768 * 768 + 768)
    with pytest.raises(ValueError, match="head_conf.kind: 'conv' is not one of mlp, linear"):
        MultiTaskHeads(8, 6, 2, 12, kind="conv")
    with pytest.raises(ValueError, match="inter_dim is the MLP's intermediate size"):
        MultiTaskHeads(8, 6, 2, 12, kind="linear", inter_dim=4)


def test_layer_to_layer_heads_map_every_student_layer():
    heads = LayerToLayerHeads(student_dim=8, teacher_dim=6, num_student_layers=4, num_teacher_layers=12)
    assert heads.teacher_layers == [3, 6, 9, 12]
    states = [torch.randn(1, 5, 8) for _ in range(5)]
    out = heads(states)
    torch.testing.assert_close(out[1][1], heads.heads[1](states[2]))
    with pytest.raises(ValueError, match="outside 0..12"):
        LayerToLayerHeads(8, 6, 2, 12, layer_map=[6, 13])
    with pytest.raises(ValueError, match="has 1 entries for 2 student layers"):
        LayerToLayerHeads(8, 6, 2, 12, layer_map=[6])


def test_layer_to_layer_heads_on_chosen_student_layers():
    """DPHuBERT's released recipe: the projected CNN features (state 0) and layers 4, 8 and 12 only."""
    heads = LayerToLayerHeads(8, 6, 12, 12, student_layers=[0, 4, 8, 12])
    assert heads.teacher_layers == [0, 4, 8, 12] and len(heads.heads) == 4
    states = [torch.randn(1, 5, 8) for _ in range(13)]
    out = heads(states)
    assert [layer for layer, _ in out] == [0, 4, 8, 12]
    torch.testing.assert_close(out[0][1], heads.heads[0](states[0]))
    torch.testing.assert_close(out[2][1], heads.heads[2](states[8]))
    # A 4-layer student's layers 2 and 4 go to a 12-layer teacher's 6 and 12.
    assert LayerToLayerHeads(8, 6, 4, 12, student_layers=[2, 4]).teacher_layers == [6, 12]
    with pytest.raises(ValueError, match=r"student_layers: \[0, 13\] must be distinct layers of 0..12"):
        LayerToLayerHeads(8, 6, 12, 12, student_layers=[0, 13])
    with pytest.raises(ValueError, match="has 1 entries for 2 student layers"):
        LayerToLayerHeads(8, 6, 12, 12, student_layers=[4, 8], layer_map=[4])
    # A pruned copy of the teacher starts at zero loss: identity heads.
    heads = LayerToLayerHeads(8, 8, 12, 12, student_layers=[0, 12], identity_init=True)
    assert all(torch.equal(p, s) for (_, p), s in zip(heads(states), [states[0], states[12]]))
    with pytest.raises(ValueError, match="a student of width 8 cannot start as the identity to a teacher of width 6"):
        LayerToLayerHeads(8, 6, 12, 12, identity_init=True)
