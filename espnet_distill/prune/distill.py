"""The pruning part of a distillation (``model_conf.prune_conf``): gates, the size penalty, their logs.

DPHuBERT's recipe: the student starts as a copy of the teacher (``encoder_conf.preset: teacher``,
``init_from_teacher: [frontend, encoder]``), its heads and feed-forward units gated
(:class:`~espnet_distill.prune.gates.EncoderGates`), and the distillation loss gets the Lagrangian size term
(:class:`~espnet_distill.prune.gates.SizeLagrangian`) that drives the expected size of the student
(front-end + encoder) to the target, reached after ``warmup_steps``.  Each step logs the expected and the
kept size (the deterministic gates': what the export prunes to), the target and the multipliers.
"""

from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet_distill.prune.gates import UNITS, EncoderGates, FrontendGates, SizeLagrangian


class Pruning(torch.nn.Module):
    """Gates on ``encoder`` and the size term.

    Args:
        frontend, encoder: the student's.
        units: what is gated, of ``heads``, ``ffn`` (the encoder's) and ``conv`` (the waveform CNN's channels,
            :class:`~espnet_distill.prune.gates.FrontendGates`; without it the front-end is counted, not gated).
        target_params: the student's final size (front-end + encoder), or
        target_ratio: the final size as a fraction of the unpruned student's.
        warmup_steps: steps over which the target falls from the full size to its final value.
        reg_lr: the learning rate of the gates' ``log_alpha`` and of the Lagrangian multipliers, without weight
            decay (DPHuBERT's ``reg_learning_rate``: 0.02; the model's own, 2e-4, would move ``log_alpha`` by
            at most about 2e-4 a step under Adam, too little to close a gate in a short run).
        init_log_alpha: the gates' start (:class:`~espnet_distill.prune.hardconcrete.HardConcrete`).
    """

    def __init__(
        self,
        frontend: torch.nn.Module,
        encoder: torch.nn.Module,
        units: Sequence[str] = UNITS,
        target_params: Optional[int] = None,
        target_ratio: Optional[float] = None,
        warmup_steps: int = 0,
        reg_lr: float = 0.02,
        init_log_alpha: float = 3.0,
    ) -> None:
        super().__init__()
        if (target_params is None) == (target_ratio is None):
            raise ValueError("prune_conf: give target_params or target_ratio (one of them)")
        self.gates = EncoderGates(encoder, units, init_log_alpha)
        self.frontend_gates = FrontendGates(frontend, init_log_alpha) if "conv" in units else None
        self.frontend_params = sum(p.numel() for p in frontend.parameters())
        full = self.frontend_params + self.gates.full_params()
        target = int(target_params) if target_params is not None else int(round(full * float(target_ratio)))
        if not 0 < target < full:
            raise ValueError(f"prune_conf: a target of {target} parameters for a student of {full}")
        self.lagrangian = SizeLagrangian(full, target, warmup_steps)
        self.reg_lr = float(reg_lr)

    def penalty(self, step: int) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The size term at training step ``step`` and the statistics to log."""
        device = self.lagrangian.lambda1.device
        expected = self.expected_frontend_params().to(device) + self.gates.expected_params().to(device)
        term = self.lagrangian(expected, step)
        stats = {
            "expected_params": expected.detach(),
            "kept_params": torch.tensor(float(self.kept_params())),
            "target_params": torch.tensor(float(self.lagrangian.target_at(step))),
            "lambda1": self.lagrangian.lambda1.detach(),
            "lambda2": self.lagrangian.lambda2.detach(),
            "size_penalty": term.detach(),
        }
        return term, stats

    def expected_frontend_params(self) -> torch.Tensor:
        if self.frontend_gates is None:
            return torch.tensor(float(self.frontend_params))
        return self.frontend_gates.expected_params()

    def kept_params(self) -> int:
        """Front-end + encoder under the deterministic gates: the exported student's size."""
        frontend = self.frontend_params if self.frontend_gates is None else self.frontend_gates.kept_params()
        return int(frontend + self.gates.kept_params())

    def multipliers(self):
        return list(self.lagrangian.parameters())

    def reg_parameters(self):
        """The parameters trained at ``reg_lr``: every gate's ``log_alpha`` and the multipliers."""
        return list(self.parameters())
