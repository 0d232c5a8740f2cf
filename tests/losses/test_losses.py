"""Regression and discriminative losses against direct computations; padding is ignored."""

import torch
import torch.nn.functional as F

from espnet_distill.losses import codeword_kl, codeword_kl_topk, regression_terms


def test_regression_terms_match_the_definition_and_ignore_padding():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 7, 5, generator=gen), torch.randn(2, 7, 5, generator=gen)
    valid = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    pred_padded = pred.clone()
    pred_padded[1, 4:] = 1e6  # garbage on padding frames must not matter
    l1, cos = regression_terms(pred_padded, target, valid)
    frames_p = torch.cat([pred[0], pred[1, :4]])
    frames_t = torch.cat([target[0], target[1, :4]])
    torch.testing.assert_close(l1, (frames_p - frames_t).abs().mean())
    torch.testing.assert_close(cos, -F.logsigmoid(F.cosine_similarity(frames_p, frames_t, dim=-1)).mean())
    l1_same, cos_same = regression_terms(target, target, valid)
    assert float(l1_same) == 0.0 and abs(float(cos_same) - float(-F.logsigmoid(torch.tensor(1.0)))) < 1e-6


def test_codeword_kl_matches_torch_kl_div():
    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 6, 10, generator=gen), torch.randn(2, 6, 10, generator=gen)
    valid = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    tau = 2.0
    ours = codeword_kl(student, teacher, valid, temperature=tau)
    s = torch.cat([student[0], student[1, :2]]) / tau
    t = torch.cat([teacher[0], teacher[1, :2]]) / tau
    reference = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(ours, reference)
    assert float(codeword_kl(teacher, teacher, valid)) < 1e-6


def topk_inputs(teacher, tau, k):
    log_p = F.log_softmax(teacher / tau, dim=-1)
    return log_p.topk(k, dim=-1)


def test_codeword_kl_topk_is_the_kl_of_the_merged_distributions():
    """k + 1 outcomes (the teacher's top k, and the rest): the KL of the merged distributions, computed
    directly; equal to the full KL with every codeword kept; a lower bound of it otherwise."""
    gen = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(2, 5, 12, generator=gen), 3 * torch.randn(2, 5, 12, generator=gen)
    valid = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    tau, k = 1.5, 4
    values, index = topk_inputs(teacher, tau, k)
    index[1, 3:] = -1  # padding as the collate leaves it
    ours = codeword_kl_topk(student, values, index, valid, tau)
    expected = []
    p, q = F.softmax(teacher / tau, -1), F.softmax(student / tau, -1)
    for b, t in valid.nonzero().tolist():
        ids = index[b, t]
        p_merged = torch.cat([p[b, t, ids], 1 - p[b, t, ids].sum(-1, keepdim=True)])
        q_merged = torch.cat([q[b, t, ids], 1 - q[b, t, ids].sum(-1, keepdim=True)])
        expected.append((p_merged * (p_merged / q_merged).log()).sum())
    torch.testing.assert_close(ours, torch.stack(expected).mean(), rtol=1e-5, atol=1e-6)
    full = codeword_kl(student, teacher, valid, temperature=tau)
    assert 0 < float(ours) < float(full)
    values, index = topk_inputs(teacher, tau, 12)
    torch.testing.assert_close(codeword_kl_topk(student, values, index, valid, tau), full, rtol=1e-5, atol=1e-6)


def test_codeword_kl_topk_trains_the_student_towards_the_teacher():
    gen = torch.Generator().manual_seed(3)
    teacher = 8 * torch.randn(1, 20, 30, generator=gen)  # peaky, as HuBERT's cosine logits over 0.1
    values, index = topk_inputs(teacher, 1.0, 5)
    student = torch.zeros(1, 20, 30, requires_grad=True)
    optimizer = torch.optim.Adam([student], lr=0.1)
    valid = torch.ones(1, 20, dtype=torch.bool)
    first = None
    for _ in range(60):
        loss = codeword_kl_topk(student, values, index, valid)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.05 * first
    assert float(codeword_kl(student.detach(), teacher, valid)) < 0.1 * float(
        codeword_kl(torch.zeros_like(student), teacher, valid)
    )
