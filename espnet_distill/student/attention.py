"""The blocks of a pruned layer: self-attention with any number of heads of a given width, and a feed-forward
block with any number of units.

torchaudio's ``SelfAttention`` splits ``embed_dim`` into its heads; a layer pruned by heads keeps fewer
heads of the same width, so its projections are ``embed_dim -> heads * head_dim -> embed_dim``.  With no
head left the block outputs its output bias alone, as the gated layer did.  The interface is torchaudio's
(``forward(x, attention_mask, position_bias, key_padding_mask) -> (output, None)``, ``embed_dim``), so the
module drops into torchaudio's ``EncoderLayer``.
"""

import warnings
from typing import Optional, Tuple

import torch


def linear(in_features: int, out_features: int) -> torch.nn.Linear:
    """``nn.Linear``, quiet when a pruned size is 0 (PyTorch warns that it cannot initialise no weights)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
        return torch.nn.Linear(in_features, out_features)


class HeadsSelfAttention(torch.nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_heads < 0 or head_dim < 1:
            raise ValueError(f"attention: {num_heads} heads of width {head_dim}")
        self.embed_dim, self.num_heads, self.head_dim, self.dropout = embed_dim, num_heads, head_dim, dropout
        inner = num_heads * head_dim
        self.k_proj = linear(embed_dim, inner)
        self.v_proj = linear(embed_dim, inner)
        self.q_proj = linear(embed_dim, inner)
        self.out_proj = linear(inner, embed_dim)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_bias: Optional[torch.Tensor] = None,
        key_padding_mask: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, None]:
        batch, frames, _ = x.shape
        if self.num_heads == 0:  # the output bias alone; a sum, not a view of the parameter (see UnitsFeedForward)
            return torch.zeros_like(x) + self.out_proj.bias, None
        shape = (batch, frames, self.num_heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        out = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, self.num_heads * self.head_dim)), None

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"


class UnitsFeedForward(torch.nn.Module):
    """torchaudio's ``FeedForward`` (same parameter names) with any number of units; with none it outputs its
    output bias alone, as the gated block did, and runs no empty matrix product (which int8 quantizers reject)."""

    def __init__(self, io_features: int, units: int, intermediate_dropout: float, output_dropout: float) -> None:
        super().__init__()
        self.units = units
        self.intermediate_dense = linear(io_features, units)
        self.intermediate_dropout = torch.nn.Dropout(intermediate_dropout)
        self.output_dense = linear(units, io_features)
        self.output_dropout = torch.nn.Dropout(output_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.units == 0:
            # A new tensor, not a view of the bias: a view of a parameter made under no_grad claims a gradient it
            # has no function for, which PyTorch's FLOP counter (the benchmark's MACs) rejects.
            return self.output_dropout(torch.zeros_like(x) + self.output_dense.bias)
        x = self.intermediate_dropout(torch.nn.functional.gelu(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))
