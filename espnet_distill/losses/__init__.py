"""Distillation losses; every term averages over valid (non-padding) frames only."""

from espnet_distill.losses.discriminative import codeword_kl, codeword_kl_topk
from espnet_distill.losses.regression import regression_terms

__all__ = ["codeword_kl", "codeword_kl_topk", "regression_terms"]
