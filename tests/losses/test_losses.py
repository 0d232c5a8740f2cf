"""Regression and discriminative losses against direct computations; padding is ignored."""

import torch
import torch.nn.functional as F

from espnet_distill.losses import codeword_kl, regression_terms


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
