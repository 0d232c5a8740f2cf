"""The regression loss of DistilHuBERT: L1 plus a cosine term, per target layer."""

from typing import Tuple

import torch
import torch.nn.functional as F


def regression_terms(
    prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """L1 and cosine terms over the valid frames.

    Args:
        prediction: ``(batch, frames, dim)``.
        target: ``(batch, frames, dim)``, the teacher layer.
        valid: ``(batch, frames)`` bool, False on padding.

    Returns:
        ``l1``: mean absolute error over valid frames and dimensions;
        ``cos``: mean over valid frames of ``-log sigmoid(cos(prediction, target))``.
        Both are averages over all valid frames of the batch, so a padded batch
        gives the frame-weighted mean of its utterances' losses.
    """
    prediction, target = prediction.float(), target.float()
    num_frames = valid.sum().clamp(min=1)
    weights = valid.to(prediction.dtype)
    l1 = ((prediction - target).abs().mean(dim=-1) * weights).sum() / num_frames
    cosine = F.cosine_similarity(prediction, target, dim=-1)
    cos = (-F.logsigmoid(cosine) * weights).sum() / num_frames
    return l1, cos
