"""Masks of padded batches, shared by the front-ends, the encoder and the distillation model."""

import torch


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(batch, max_len)``, True on padding frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def attention_bias(pad: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive attention mask torchaudio's layers take: ``(batch, 1, T, T)``."""
    batch, max_len = pad.shape
    return (-10000.0 * pad[:, None, None, :].to(dtype)).expand(batch, 1, max_len, max_len)
