"""The Transformer student encoder: hidden states, padding, initialisation from a teacher."""

import pytest
import torch

from espnet_distill.student.encoder import TransformerStudentEncoder
from espnet_distill.teacher import load_teacher
from tests.conftest import tiny_batch


def small_encoder(**kwargs):
    conf = dict(
        input_size=48,
        output_size=64,
        num_layers=3,
        attention_heads=4,
        ffn_dim=96,
        pos_conv_kernel=16,
        pos_conv_groups=4,
        dropout=0.0,
        attention_dropout=0.0,
    )
    conf.update(kwargs)
    return TransformerStudentEncoder(**conf).eval()


@pytest.mark.parametrize("pre_ln", [False, True])
def test_hidden_states_and_output(pre_ln):
    torch.manual_seed(0)
    encoder = small_encoder(layer_norm_first=pre_ln)
    x, lengths = torch.randn(2, 30, 48), torch.tensor([30, 21])
    with torch.no_grad():
        states, olens = encoder.hidden_states(x, lengths)
        output, olens2, _ = encoder(x, lengths)
    assert len(states) == 4 and all(s.shape == (2, 30, 64) for s in states)
    assert olens.tolist() == [30, 21] and olens2.tolist() == [30, 21]
    expected = (
        torch.nn.functional.layer_norm(
            states[-1], (64,), encoder.transformer.layer_norm.weight, encoder.transformer.layer_norm.bias
        )
        if pre_ln
        else states[-1]
    )
    torch.testing.assert_close(output, expected)
    assert encoder.output_size() == 64 and encoder.pre_layer_norm is pre_ln


def test_padding_does_not_change_valid_frames():
    torch.manual_seed(0)
    encoder = small_encoder()
    x, lengths = torch.randn(2, 30, 48), torch.tensor([30, 17])
    with torch.no_grad():
        batch, _ = encoder.hidden_states(x, lengths)
        alone, _ = encoder.hidden_states(x[1:, :17], lengths[1:])
    for ours, ref in zip(batch, alone):
        torch.testing.assert_close(ours[1, :17], ref[0], atol=1e-5, rtol=0)


def test_copying_every_layer_reproduces_the_teacher(tiny_teacher_path, tiny_corpus):
    """A student with the teacher's shape, initialised from it, has the teacher's hidden states."""
    teacher = load_teacher("torchaudio", path=str(tiny_teacher_path))
    encoder = small_encoder(input_size=64, num_layers=3, ffn_dim=128)
    encoder.init_from_teacher(teacher.model)
    waves, lengths = tiny_batch(tiny_corpus, 2)
    with torch.no_grad():
        reference = teacher(waves, lengths)
        cnn, frames = teacher.model.feature_extractor(waves[:1, : int(lengths[0])], lengths[:1])
        states, _ = encoder.hidden_states(teacher.model.encoder.feature_projection(cnn), frames)
    for ours, ref in zip(states, reference.hidden_states):
        torch.testing.assert_close(ours[0], ref[0, : int(frames[0])], atol=1e-4, rtol=0)


def test_init_from_a_wider_teacher_is_refused(tiny_teacher_path):
    teacher = load_teacher("torchaudio", path=str(tiny_teacher_path))
    encoder = small_encoder(output_size=32, attention_heads=4, pos_conv_groups=4)
    with pytest.raises(ValueError, match="does not match the teacher's layers"):
        encoder.init_from_teacher(teacher.model)


def test_bad_shapes_are_explained():
    with pytest.raises(ValueError, match="not divisible by attention_heads"):
        small_encoder(attention_heads=5)
