"""Gates on a Transformer student's attention heads and feed-forward units, on its waveform CNN's channels,
and the size they give.

:class:`EncoderGates` puts one :class:`~espnet_distill.prune.hardconcrete.HardConcrete` gate on each
attention head and each feed-forward unit of a :class:`~espnet_distill.student.encoder.TransformerStudentEncoder`
(a copy of the teacher, DPHuBERT's starting point).  The gates act through forward pre-hooks on the two
output projections (a head's output, a unit's activation, scaled by its gate), so the encoder's modules and
state dict are the encoder's own.  The encoder's parameter count is linear in the kept heads and units:

    params = fixed + sum over layers (heads * per_head + units * per_unit)

with ``per_head = 4 * dim * head_dim + 3 * head_dim`` (the rows of q, k, v with their biases and the
columns of the output projection) and ``per_unit = 2 * dim + 1``.  :meth:`EncoderGates.expected_params`
puts each gate's probability of being non-zero in place of the counts (differentiable, the Lagrangian's
input); :meth:`EncoderGates.kept_params` the counts of the deterministic gates, which the physically pruned
encoder has exactly (:func:`~espnet_distill.prune.physical.prune_encoder`).

:class:`FrontendGates` gates the output channels of each convolution of a ``wav_cnn`` front-end but the
last (a channel's GELU output, scaled by its gate, through a pre-hook on the next convolution).  Layer ``i``
holds ``c_i * c_(i-1) * k_i`` weights (and ``c_i`` biases), so the expected size, with independent gates, is
the same sum over the expected counts.  The last convolution's channels are not gated: they feed the
projection's LayerNorm over channels, whose statistics a removed channel would change, so that the pruned
front-end computes exactly what the gated one did.  For the same reason a ``layer_norm`` extractor (a
LayerNorm over channels after every convolution) is refused; HuBERT Base's ``group_norm`` one normalizes
each channel of the first layer on its own.
"""

from typing import Dict, List, Optional, Sequence

import torch
from torchaudio.models.wav2vec2.components import SelfAttention

from espnet_distill.prune.hardconcrete import HardConcrete
from espnet_distill.student.attention import HeadsSelfAttention

UNITS = ("heads", "ffn")  # the encoder's units; "conv" gates the front-end (FrontendGates)
FRONTEND_UNITS = ("conv",)


def _scale_input(gate: HardConcrete, repeat: int, channel_dim: int = -1):
    """A forward pre-hook that scales the input's ``channel_dim`` by the gate (each value ``repeat`` times)."""

    def hook(module: torch.nn.Module, inputs):
        (x,) = inputs
        z = gate()
        z = z.repeat_interleave(repeat) if repeat > 1 else z
        if channel_dim != -1:
            z = z.reshape([-1] + [1] * (x.dim() - channel_dim - 1))
        return (x * z,)

    return hook


class EncoderGates(torch.nn.Module):
    """HardConcrete gates on ``encoder``'s heads and/or feed-forward units (``units``), hooked into it."""

    def __init__(self, encoder: torch.nn.Module, units: Sequence[str] = UNITS, init_log_alpha: float = 3.0) -> None:
        super().__init__()
        unknown = sorted(set(units) - set(UNITS) - set(FRONTEND_UNITS))
        if unknown:
            raise ValueError(
                f"prune_conf.units: {unknown} are not prunable units (choose from {list(UNITS + FRONTEND_UNITS)})"
            )
        units = [unit for unit in units if unit in UNITS]
        layers = encoder.transformer.layers
        for index, layer in enumerate(layers):
            attention = layer.attention
            if type(attention) not in (SelfAttention, HeadsSelfAttention):
                raise ValueError(
                    f"layer {index}: {type(attention).__name__} is not a plain multi-head attention; this pruning "
                    "gates HuBERT's, wav2vec 2.0's and data2vec's heads, not WavLM's gated relative-position ones"
                )
        self.dim = encoder.output_size()
        self.head_dim = int(layers[0].attention.head_dim)
        self.heads = torch.nn.ModuleList(
            [HardConcrete(int(layer.attention.num_heads), init_log_alpha) for layer in layers]
            if "heads" in units
            else []
        )
        self.ffn = torch.nn.ModuleList(
            [HardConcrete(int(layer.feed_forward.intermediate_dense.out_features), init_log_alpha) for layer in layers]
            if "ffn" in units
            else []
        )
        self._head_counts = [int(layer.attention.num_heads) for layer in layers]
        self._unit_counts = [int(layer.feed_forward.intermediate_dense.out_features) for layer in layers]
        total = sum(p.numel() for p in encoder.parameters())
        self.fixed_params = total - sum(
            h * self.per_head + u * self.per_unit for h, u in zip(self._head_counts, self._unit_counts)
        )
        self._handles = []
        for index, layer in enumerate(layers):
            if self.heads:
                hook = _scale_input(self.heads[index], self.head_dim)
                self._handles.append(layer.attention.out_proj.register_forward_pre_hook(hook))
            if self.ffn:
                hook = _scale_input(self.ffn[index], 1)
                self._handles.append(layer.feed_forward.output_dense.register_forward_pre_hook(hook))

    @property
    def per_head(self) -> int:
        return 4 * self.dim * self.head_dim + 3 * self.head_dim

    @property
    def per_unit(self) -> int:
        return 2 * self.dim + 1

    def _params(self, heads: List, units: List):
        return self.fixed_params + sum(h * self.per_head + u * self.per_unit for h, u in zip(heads, units))

    def expected_params(self) -> torch.Tensor:
        """The expected parameter count of the encoder under the gates (differentiable in ``log_alpha``)."""
        heads = [g.expected_kept() for g in self.heads] if self.heads else [float(h) for h in self._head_counts]
        units = [g.expected_kept() for g in self.ffn] if self.ffn else [float(u) for u in self._unit_counts]
        return torch.as_tensor(self._params(heads, units), dtype=torch.float32)

    def kept_counts(self) -> Dict[str, List[int]]:
        """Each layer's heads and feed-forward units the deterministic gates keep."""
        return {
            "layer_heads": [g.kept() for g in self.heads] if self.heads else list(self._head_counts),
            "layer_ffn_dims": [g.kept() for g in self.ffn] if self.ffn else list(self._unit_counts),
        }

    def kept_params(self) -> int:
        counts = self.kept_counts()
        return int(self._params(counts["layer_heads"], counts["layer_ffn_dims"]))

    def full_params(self) -> int:
        return int(self._params(self._head_counts, self._unit_counts))

    def deterministic(self) -> Dict[str, List[Optional[torch.Tensor]]]:
        """The eval-mode gate values of each layer (``None`` for a unit kind that is not gated)."""
        layers = len(self._head_counts)
        return {
            "heads": [g.deterministic().detach() for g in self.heads] if self.heads else [None] * layers,
            "ffn": [g.deterministic().detach() for g in self.ffn] if self.ffn else [None] * layers,
        }

    def remove(self) -> None:
        """Detach the hooks: the encoder runs ungated again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class FrontendGates(torch.nn.Module):
    """HardConcrete gates on the output channels of every convolution but the last of a ``wav_cnn`` front-end."""

    def __init__(self, frontend: torch.nn.Module, init_log_alpha: float = 3.0) -> None:
        super().__init__()
        extractor = getattr(frontend, "extractor", None)
        if extractor is None or not hasattr(extractor, "conv_layers"):
            raise ValueError(
                f"prune_conf.units: conv gates the waveform CNN's channels; a {type(frontend).__name__} front-end "
                "has none (gate heads and ffn only)"
            )
        blocks = list(extractor.conv_layers)
        norms = [block.layer_norm for block in blocks]
        if any(norm is not None and not isinstance(norm, torch.nn.GroupNorm) for norm in norms):
            raise ValueError(
                "prune_conf.units: conv: this CNN normalizes over channels after each convolution (extractor_mode "
                "layer_norm, e.g. HuBERT Large's); removing a channel would change every frame's statistics, so "
                "its channels are not pruned (gate heads and ffn only)"
            )
        if any(norm is not None and norm.num_groups != norm.num_channels for norm in norms):
            raise ValueError("prune_conf.units: conv: a GroupNorm over several channels a group cannot be pruned")
        if len(blocks) < 2:
            raise ValueError("prune_conf.units: conv: a one-layer CNN has no channels to gate (the last is kept)")
        self._channels = [int(block.conv.out_channels) for block in blocks]
        self._kernels = [int(block.conv.kernel_size[0]) for block in blocks]
        self._bias = blocks[0].conv.bias is not None
        self._norm_params = [0 if norm is None else (2 * norm.num_channels if norm.affine else 0) for norm in norms]
        self.channels = torch.nn.ModuleList(HardConcrete(c, init_log_alpha) for c in self._channels[:-1])
        total = sum(p.numel() for p in frontend.parameters())
        self.fixed_params = total - self._conv_params(self._channels)
        self._handles = [
            blocks[index + 1].conv.register_forward_pre_hook(_scale_input(gate, 1, channel_dim=1))
            for index, gate in enumerate(self.channels)
        ]

    def _conv_params(self, counts: List) -> object:
        """The parameters of the convolutions and their norms for these output channel counts."""
        total, previous = 0, 1
        for index, count in enumerate(counts):
            total = total + count * previous * self._kernels[index] + (count if self._bias else 0)
            if self._norm_params[index]:
                total = total + 2 * count
            previous = count
        return total

    def expected_params(self) -> torch.Tensor:
        counts = [g.expected_kept() for g in self.channels] + [float(self._channels[-1])]
        return torch.as_tensor(self.fixed_params + self._conv_params(counts), dtype=torch.float32)

    def kept_channels(self) -> List[int]:
        return [g.kept() for g in self.channels] + [self._channels[-1]]

    def kept_params(self) -> int:
        return int(self.fixed_params + self._conv_params(self.kept_channels()))

    def full_params(self) -> int:
        return int(self.fixed_params + self._conv_params(self._channels))

    def deterministic(self) -> List[torch.Tensor]:
        """The eval-mode gate values of each convolution but the last."""
        return [g.deterministic().detach() for g in self.channels]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class SizeLagrangian(torch.nn.Module):
    """DPHuBERT's size constraint: ``l1 * d + l2 * d**2`` with ``d`` the expected size's distance to the target.

    ``d = (expected - target) / full`` in parameters, the target falling linearly from ``full`` to
    ``target_params`` over ``warmup_steps``.  The multipliers ``l1, l2`` are trained by gradient *ascent*
    (their gradients are negated by hooks, so the optimizer that descends on the model ascends on them; give
    them their own learning rate, DPHuBERT's 0.02), which raises the penalty until the size meets the target.
    """

    def __init__(self, full_params: int, target_params: int, warmup_steps: int) -> None:
        super().__init__()
        if not 0 < target_params <= full_params:
            raise ValueError(f"prune_conf: target of {target_params} parameters, from {full_params}")
        self.full_params, self.target_params, self.warmup_steps = (
            int(full_params),
            int(target_params),
            int(warmup_steps),
        )
        self.lambda1 = torch.nn.Parameter(torch.zeros(()))
        self.lambda2 = torch.nn.Parameter(torch.zeros(()))
        for multiplier in (self.lambda1, self.lambda2):
            multiplier.register_hook(torch.neg)

    def target_at(self, step: int) -> float:
        progress = 1.0 if self.warmup_steps <= 0 else min(1.0, step / self.warmup_steps)
        return self.full_params - (self.full_params - self.target_params) * progress

    def forward(self, expected_params: torch.Tensor, step: int) -> torch.Tensor:
        distance = (expected_params - self.target_at(step)) / self.full_params
        return self.lambda1 * distance + self.lambda2 * distance * distance
