"""The discriminative loss: KL(p_teacher || p_student) over HuBERT's codewords."""

import torch
import torch.nn.functional as F


def _frame_mean(kl: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (kl * valid.to(kl.dtype)).sum() / valid.sum().clamp(min=1)


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
    return _frame_mean(kl, valid)


def codeword_kl_topk(
    student_logits: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    teacher_index: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The KL from the teacher's top k codewords only (stored targets), averaged over valid frames.

    Both distributions are merged into k + 1 outcomes: the teacher's top k codewords of the frame,
    and "any other" (the teacher's residual mass ``r = 1 - sum p_k``, the student's mass outside
    those k).  This is the KL of the merged distributions: a lower bound of the full KL, equal to
    it when the teacher puts no mass outside its top k.

    Args:
        student_logits: ``(batch, frames, codewords)``.
        teacher_log_probs: ``(batch, frames, k)``: the teacher's log-probabilities of its top k
            codewords at ``temperature`` (of the full softmax: they need not sum to 1).
        teacher_index: ``(batch, frames, k)``: their codeword ids (padding may hold -1).
        valid: ``(batch, frames)`` bool, False on padding.
        temperature: the student's logits are divided by it (the teacher's was applied when stored).
    """
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    index = teacher_index.long().clamp(min=0)
    log_q_top = log_q.gather(-1, index)
    log_p = teacher_log_probs.float()
    p = log_p.exp()
    kl = (p * (log_p - log_q_top)).sum(-1)
    if index.shape[-1] < log_q.shape[-1]:  # "any other": the teacher's residual mass against the student's
        log_q_rest = torch.logsumexp(log_q.scatter(-1, index, float("-inf")), dim=-1)
        rest = (1.0 - p.sum(-1)).clamp(min=0.0)
        kl = kl + torch.xlogy(rest, rest) - rest * log_q_rest
    return _frame_mean(kl, valid)
