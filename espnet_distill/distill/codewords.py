"""Codeword distributions for the discriminative loss.

The teacher's distribution comes from HuBERT's own head (cosine of
``final_proj(last layer)`` to the label embeddings over HuBERT's temperature)
or, for teachers without one (Hugging Face), from a k-means codebook of one
teacher layer (see :mod:`espnet_distill.make_teacher.codebook`).  The student's
logits come from its own projection and the cosine to the same frozen
codewords, or from a linear layer.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from espnet_distill.files.codebook import read_codebook


def cosine_logits(features: torch.Tensor, codewords: torch.Tensor, logit_temp: float) -> torch.Tensor:
    """``cos(features, codeword) / logit_temp`` for every codeword: ``(..., num_codewords)``."""
    return F.normalize(features.float(), dim=-1) @ F.normalize(codewords.float(), dim=-1).t() / logit_temp


class CosineCodewordHead(torch.nn.Module):
    """Student projection followed by the cosine to frozen teacher codewords."""

    def __init__(self, student_dim: int, codewords: torch.Tensor, logit_temp: float) -> None:
        super().__init__()
        self.projection = torch.nn.Linear(student_dim, codewords.shape[1])
        self.register_buffer("codewords", codewords.detach().clone().float())
        self.logit_temp = logit_temp

    def forward(self, student_last: torch.Tensor) -> torch.Tensor:
        return cosine_logits(self.projection(student_last), self.codewords, self.logit_temp)


class LinearCodewordHead(torch.nn.Module):
    """A linear layer from the student's last layer to the codeword count."""

    def __init__(self, student_dim: int, num_codewords: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(student_dim, num_codewords)

    def forward(self, student_last: torch.Tensor) -> torch.Tensor:
        return self.linear(student_last)


def build_codeword_head(kind: str, student_dim: int, codewords: torch.Tensor, logit_temp: float) -> torch.nn.Module:
    """``kind``: ``cosine`` or ``linear``."""
    if kind == "cosine":
        return CosineCodewordHead(student_dim, codewords, logit_temp)
    if kind == "linear":
        return LinearCodewordHead(student_dim, codewords.shape[0])
    raise ValueError(f"model_conf.codeword_logits must be cosine or linear, got {kind!r}")


def load_codebook(path: str) -> tuple:
    """``(codewords (K, dim) tensor, teacher layer)`` from a ``teacher_codebook`` npz file; a
    :class:`~espnet_distill.utils.config.ConfigError` (a ``ValueError``) naming it if it is not one."""
    codewords, layer = read_codebook(path)
    return torch.from_numpy(codewords).float(), layer


def teacher_logits_from_codebook(
    hidden: torch.Tensor, codewords: torch.Tensor, logit_temp: Optional[float]
) -> torch.Tensor:
    """The teacher's codeword logits from a k-means codebook of one of its layers."""
    return cosine_logits(hidden, codewords, logit_temp if logit_temp else 0.1)
