"""The discriminative loss: KL(p_teacher || p_student) over HuBERT's codewords."""

import torch
import torch.nn.functional as F


def codeword_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Per-frame KL divergence at temperature ``tau``, averaged over valid frames.

    Args:
        student_logits: ``(batch, frames, codewords)``.
        teacher_logits: ``(batch, frames, codewords)``, e.g. HuBERT's cosine logits.
        valid: ``(batch, frames)`` bool, False on padding.
        temperature: both logits are divided by it before the softmax.
    """
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    weights = valid.to(kl.dtype)
    return (kl * weights).sum() / valid.sum().clamp(min=1)
