"""HardConcrete gates: the L0 relaxation of Louizos, Welling and Kingma (ICLR 2018).

One gate per structured unit (an attention head, a feed-forward unit, a CNN channel).  In training each
gate is a sample of a stretched, clipped binary-concrete variable, so it is exactly 0 or 1 with positive
probability and differentiable in between; :meth:`HardConcrete.expected_kept` is the expected number of
non-zero gates (the differentiable L0 norm).  In eval mode the gates are deterministic and binary: the
``round(expected_kept)`` units of highest ``log_alpha`` are kept (1), the others pruned (0), so the pruned
model has the size the training drove the expectation to (Louizos et al.'s test-time rule,
``clamp(sigmoid(log_alpha) * (r - l) + l, 0, 1) > 0``, keeps units whose probability of being non-zero is as
low as 0.2, and so leaves a model larger than the expected size).
"""

import math

import torch

# Louizos et al.'s constants: the temperature and the stretch interval (l, r) = (-0.1, 1.1).
TEMPERATURE = 2.0 / 3.0
LOWER, UPPER = -0.1, 1.1


class HardConcrete(torch.nn.Module):
    """``size`` gates with learnt ``log_alpha``; ``forward()`` returns their values, shape ``(size,)``.

    Args:
        size: the number of units.
        init_log_alpha: the starting ``log_alpha`` of every gate; at the default 3.0 training samples keep a
            unit with probability 0.99, so the deterministic gates keep ``round(0.99 * size)`` units: all of
            a group of up to 50 (the gated model then starts as the model itself), one fewer in 100.
    """

    def __init__(self, size: int, init_log_alpha: float = 3.0) -> None:
        super().__init__()
        self.size = size
        self.log_alpha = torch.nn.Parameter(torch.full((size,), float(init_log_alpha)))

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.deterministic()
        u = torch.rand_like(self.log_alpha).clamp(1e-6, 1.0 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / TEMPERATURE)
        return (s * (UPPER - LOWER) + LOWER).clamp(0.0, 1.0)

    def deterministic(self) -> torch.Tensor:
        """1 for the ``round(expected_kept())`` units of highest ``log_alpha``, 0 for the others."""
        with torch.no_grad():
            kept = int(torch.round(self.expected_kept()))
            gates = torch.zeros_like(self.log_alpha)
            gates[torch.topk(self.log_alpha, kept).indices] = 1.0
        return gates

    def keep_probability(self) -> torch.Tensor:
        """P(gate != 0) of each unit in training."""
        return torch.sigmoid(self.log_alpha - TEMPERATURE * math.log(-LOWER / UPPER))

    def expected_kept(self) -> torch.Tensor:
        """The expected number of non-zero gates (differentiable)."""
        return self.keep_probability().sum()

    def kept(self) -> int:
        """The number of units the deterministic gates keep."""
        return int(torch.round(self.expected_kept().detach()))

    def extra_repr(self) -> str:
        return f"size={self.size}"
