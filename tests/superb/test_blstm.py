"""encoder: blstm computes ESPnet's bidirectional RNNEncoder without packed sequences."""

import pytest
import torch
from espnet2.asr.encoder.rnn_encoder import RNNEncoder

from espnet_distill.superb.blstm import PaddedBLSTMEncoder, reverse_padded


def test_reverse_padded_reverses_each_sequence_within_its_length():
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_padded(x, torch.tensor([4, 2]))
    assert out.squeeze(-1).tolist() == [[3.0, 2.0, 1.0, 0.0], [5.0, 4.0, 6.0, 7.0]]
    assert torch.equal(reverse_padded(out, torch.tensor([4, 2])), x)


def pair(layers=2, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    reference = RNNEncoder(
        12,
        rnn_type="lstm",
        bidirectional=True,
        use_projection=False,
        num_layers=layers,
        hidden_size=10,
        output_size=7,
        dropout=dropout,
        subsample=None,
    )
    encoder = PaddedBLSTMEncoder(12, num_layers=layers, hidden_size=10, output_size=7, dropout=dropout)
    encoder.load_state_dict(encoder.rnn_encoder_weights(reference.state_dict()))
    return reference, encoder


@pytest.mark.parametrize("layers", [1, 3])
def test_outputs_and_gradients_equal_espnets_packed_rnn_encoder(layers):
    reference, encoder = pair(layers)
    torch.manual_seed(1)
    x = torch.randn(3, 9, 12)
    lengths = torch.tensor([9, 6, 2])  # sorted, as ESPnet's packing needs
    x[1, 6:] = 100.0  # padding must not reach any real frame, in either direction
    x[2, 2:] = -100.0
    expected, expected_lengths, _ = reference(x, lengths)
    out, out_lengths, _ = encoder(x, lengths)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    assert torch.equal(out_lengths, expected_lengths) and bool((out[2, 2:] == 0).all())
    weights = torch.randn_like(out)
    (expected * weights).sum().backward()
    (out * weights).sum().backward()
    mapped = encoder.rnn_encoder_weights({name: p.grad for name, p in reference.named_parameters()})
    for name, p in encoder.named_parameters():
        torch.testing.assert_close(p.grad, mapped[name], atol=1e-5, rtol=1e-4, msg=name)


def test_the_longest_sequence_sets_the_frames_and_order_does_not_matter():
    _, encoder = pair()
    x = torch.randn(3, 11, 12)
    lengths = torch.tensor([4, 8, 6])  # unsorted, frames past the longest dropped as ESPnet does
    out, _, _ = encoder.eval()(x, lengths)
    assert out.shape == (3, 8, 7)
    for b in range(3):  # each utterance alone gives the same frames
        alone, _, _ = encoder(x[b : b + 1, : lengths[b]], lengths[b : b + 1])
        torch.testing.assert_close(out[b : b + 1, : lengths[b]], alone, atol=1e-6, rtol=1e-5)


def test_dropout_acts_between_layers_in_training_only():
    reference, encoder = pair(layers=2, dropout=0.5)
    x, lengths = torch.randn(2, 5, 12), torch.tensor([5, 3])
    torch.testing.assert_close(encoder.eval()(x, lengths)[0], reference.eval()(x, lengths)[0], atol=1e-6, rtol=1e-5)
    encoder.train()
    assert not torch.allclose(encoder(x, lengths)[0], encoder(x, lengths)[0])
    one = PaddedBLSTMEncoder(12, num_layers=1, hidden_size=10, output_size=7, dropout=0.5).train()
    torch.testing.assert_close(one(x, lengths)[0], one(x, lengths)[0])  # one layer: nothing between layers
