"""HardConcrete gates, the expected size, the Lagrangian, and physical pruning equal to the gated encoder."""

import pytest
import torch
from torchaudio.models import wavlm_model

from espnet_distill.frontend.fbank import FbankFrontend
from espnet_distill.frontend.wav_cnn import WavCNNFrontend
from espnet_distill.prune.distill import Pruning
from espnet_distill.prune.gates import EncoderGates, FrontendGates, SizeLagrangian
from espnet_distill.prune.hardconcrete import HardConcrete
from espnet_distill.prune.physical import prune_encoder, prune_frontend
from espnet_distill.student.encoder import TransformerStudentEncoder
from tests.conftest import TINY_ENCODER

CONF = dict(
    output_size=32,
    num_layers=3,
    attention_heads=4,
    ffn_dim=48,
    pos_conv_kernel=8,
    pos_conv_groups=4,
    dropout=0.0,
    attention_dropout=0.0,
)


def encoder(**overrides):
    torch.manual_seed(0)
    return TransformerStudentEncoder(24, **{**CONF, **overrides}).eval()


def params(module):
    return sum(p.numel() for p in module.parameters())


def batch():
    torch.manual_seed(1)
    return torch.randn(2, 30, 24), torch.tensor([30, 17])


def test_hard_concrete_samples_exact_zeros_and_ones_and_its_expected_count():
    gate = HardConcrete(20000, init_log_alpha=0.0).train()
    z = gate().detach()
    assert float(z.min()) == 0.0 and float(z.max()) == 1.0 and bool(((z > 0) & (z < 1)).any())
    # P(z != 0), the L0 term, against the frequency in samples
    assert float((z > 0).float().mean()) == pytest.approx(float(gate.keep_probability()[0].detach()), abs=0.015)
    gate.expected_kept().backward()
    assert bool((gate.log_alpha.grad > 0).all())
    assert HardConcrete(5).eval()().tolist() == [1.0] * 5  # the default start: every unit kept, unscaled
    gate = HardConcrete(4)
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([5.0, -5.0, 0.5, -4.0]))
    assert gate.kept() == round(float(gate.keep_probability().sum().detach())) == 2
    assert gate.eval()().tolist() == [1.0, 0.0, 1.0, 0.0]  # the two of highest log_alpha


def test_gates_at_their_start_leave_the_encoder_unchanged():
    plain = encoder()
    x, n = batch()
    expected = plain(x, n)[0]
    gates = EncoderGates(plain).eval()
    torch.testing.assert_close(plain(x, n)[0], expected)
    assert gates.kept_params() == gates.full_params() == params(plain)
    gates.remove()


def random_gates(model, seed=3):
    gates = EncoderGates(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for gate in [*gates.heads, *gates.ffn]:
            gate.log_alpha.copy_(torch.randn(gate.size) * 3)  # some units pruned, some scaled, some kept
        gates.heads[1].log_alpha.fill_(-10.0)  # a layer without attention
        gates.ffn[2].log_alpha.fill_(-10.0)  # and one without a feed-forward block
    return gates.eval()


def test_the_pruned_encoder_computes_the_gated_one_and_has_the_size_the_gates_say():
    model = encoder()
    gates = random_gates(model)
    x, n = batch()
    gated = model(x, n)[0]
    pruned, conf = prune_encoder(model, CONF, 24, gates)
    counts = gates.kept_counts()
    assert (
        conf["layer_heads"] == counts["layer_heads"] and conf["layer_heads"][1] == 0 and conf["layer_ffn_dims"][2] == 0
    )
    assert 0 < sum(counts["layer_heads"]) < 12 and 0 < sum(counts["layer_ffn_dims"]) < 3 * 48
    torch.testing.assert_close(pruned(x, n)[0], gated, atol=1e-5, rtol=1e-5)
    assert params(pruned) == gates.kept_params() < params(model)
    # The description rebuilds the same structure: what student.yaml will hold.
    rebuilt = TransformerStudentEncoder(24, **conf)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in pruned.parameters()]


def test_the_expected_size_tends_to_the_kept_size_as_the_gates_harden():
    model = encoder()
    gates = random_gates(model)
    # The deterministic gates keep round(expected) units a layer: the kept size is the expected one, rounded.
    slack = sum(gates.per_head / 2 for _ in gates.heads) + sum(gates.per_unit / 2 for _ in gates.ffn)
    assert abs(float(gates.expected_params().detach()) - gates.kept_params()) <= slack
    with torch.no_grad():
        for gate in [*gates.heads, *gates.ffn]:
            gate.log_alpha.copy_(torch.where(gate.log_alpha > 0, 30.0, -30.0))  # keep probabilities 0 or 1
    assert float(gates.expected_params().detach()) == pytest.approx(gates.kept_params(), rel=1e-6)
    only_ffn = EncoderGates(encoder(), units=["ffn"])
    assert len(only_ffn.heads) == 0 and float(only_ffn.expected_params().detach()) < only_ffn.full_params()


def test_the_lagrangian_multipliers_ascend_and_the_size_reaches_its_target():
    model = encoder()
    gates = EncoderGates(model).train()
    full = gates.full_params()
    target = int(full * 0.6)
    lagrangian = SizeLagrangian(full, target, warmup_steps=100)
    assert lagrangian.target_at(0) == full and lagrangian.target_at(50) == pytest.approx((full + target) / 2)
    loss = lagrangian(torch.tensor(float(full)), step=100)  # above the target
    loss.backward()
    assert float(lagrangian.lambda1.grad) < 0  # descending on -grad: the multiplier grows
    optimizer = torch.optim.Adam(
        [{"params": gates.parameters(), "lr": 0.05}, {"params": lagrangian.parameters(), "lr": 0.02}]
    )
    for step in range(400):
        optimizer.zero_grad()
        lagrangian(gates.expected_params(), step).backward()
        optimizer.step()
    assert float(gates.expected_params().detach()) == pytest.approx(target, rel=0.02)
    # Kept: round(expected) units a layer, so within half a head and half a unit a layer of the expectation.
    slack = len(gates.heads) * gates.per_head / 2 + len(gates.ffn) * gates.per_unit / 2
    assert abs(gates.kept_params() - float(gates.expected_params().detach())) <= slack


def test_wavlm_attention_is_refused_by_name():
    wavlm = wavlm_model(**TINY_ENCODER, encoder_num_buckets=8, encoder_max_distance=16, aux_num_out=None)
    with pytest.raises(ValueError, match="WavLMSelfAttention is not a plain multi-head attention"):
        EncoderGates(wavlm.encoder)
    with pytest.raises(ValueError, match="not prunable units"):
        EncoderGates(encoder(), units=["channels"])


def test_heterogeneous_sizes_are_checked():
    with pytest.raises(ValueError, match="layer_heads needs a size of at least 0 for each of the 3 layers"):
        encoder(layer_heads=[4, 4])


CNN = dict(conv_layers=[[16, 10, 5], [12, 3, 2], [12, 3, 2], [8, 2, 2]], output_dim=32, dropout=0.0)


def cnn(**overrides):
    torch.manual_seed(0)
    return WavCNNFrontend(**{**CNN, **overrides}).eval()


def waves():
    torch.manual_seed(2)
    return torch.randn(2, 4000), torch.tensor([4000, 2710])


@pytest.mark.parametrize("bias", [False, True])
def test_the_pruned_cnn_computes_the_gated_one_and_has_the_size_the_gates_say(bias):
    frontend = cnn(conv_bias=bias)
    x, n = waves()
    plain, plain_lengths = frontend(x, n)
    gates = FrontendGates(frontend).eval()
    assert len(gates.channels) == 3  # every convolution but the last
    assert gates.full_params() == gates.kept_params() == params(frontend)
    torch.testing.assert_close(frontend(x, n)[0], plain)  # the start: the CNN itself
    torch.manual_seed(4)
    with torch.no_grad():
        for gate in gates.channels:
            gate.log_alpha.copy_(torch.randn(gate.size) * 3)
    gates.eval()
    gated, lengths = frontend(x, n)
    pruned, conf = prune_frontend(frontend, CNN | {"conv_bias": bias}, gates)
    kept = gates.kept_channels()
    assert [layer[0] for layer in conf["conv_layers"]] == kept and kept[-1] == 8 and sum(kept[:3]) < 40
    ours, ours_lengths = pruned(x, n)
    assert torch.equal(ours_lengths, lengths) and torch.equal(lengths, plain_lengths)
    for i, length in enumerate(lengths.tolist()):  # the valid frames (the group norm is over them only)
        torch.testing.assert_close(ours[i, :length], gated[i, :length], atol=1e-5, rtol=1e-5)
    assert params(pruned) == gates.kept_params() < params(frontend)
    # The expected size, with hard gates, is the kept one; it is differentiable in log_alpha.
    expected = gates.expected_params()
    expected.backward()
    assert all(g.log_alpha.grad is not None for g in gates.channels)
    with torch.no_grad():
        for gate in gates.channels:
            gate.log_alpha.copy_(torch.where(gate.log_alpha > 0, 30.0, -30.0))
    assert float(gates.expected_params().detach()) == pytest.approx(gates.kept_params(), rel=1e-6)
    gates.remove()
    torch.testing.assert_close(frontend(x, n)[0], plain)  # the hooks are gone


def test_pruning_with_conv_gates_counts_the_cnn_and_reaches_its_target():
    frontend, model = cnn(), TransformerStudentEncoder(32, **CONF)
    pruning = Pruning(frontend, model, units=["heads", "ffn", "conv"], target_ratio=0.5, warmup_steps=50)
    assert pruning.frontend_gates is not None
    full = params(frontend) + params(model)
    assert pruning.kept_params() == full
    pruning.train()
    gates = [p for name, p in pruning.named_parameters() if "lambda" not in name]
    optimizer = torch.optim.Adam([{"params": gates, "lr": 0.05}, {"params": pruning.multipliers(), "lr": 0.02}])
    for step in range(400):
        optimizer.zero_grad()
        term, stats = pruning.penalty(step)
        term.backward()
        optimizer.step()
    assert float(stats["expected_params"]) == pytest.approx(full * 0.5, rel=0.02)
    assert sum(g.kept() for g in pruning.frontend_gates.channels) < 40  # the CNN was pruned too


def test_conv_gates_refuse_what_cannot_be_pruned_exactly():
    with pytest.raises(ValueError, match="extractor_mode layer_norm"):
        FrontendGates(cnn(extractor_mode="layer_norm"))
    with pytest.raises(ValueError, match="a FbankFrontend front-end has none"):
        FrontendGates(FbankFrontend(output_dim=32))
    with pytest.raises(ValueError, match="a one-layer CNN has no channels to gate"):
        FrontendGates(cnn(conv_layers=[[8, 10, 5]]))
