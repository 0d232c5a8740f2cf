"""A pruned structure drawn at random to a target size: what a pruning run would leave, for timing it
before (or without) the run.

Each gate's ``log_alpha`` is drawn from ``N(0, spread^2)`` and shifted by one offset for all; the offset is
found by bisection so that the deterministic gates (``round(expected)`` units a group,
:class:`~espnet_distill.prune.hardconcrete.HardConcrete`) keep the size closest to the target.  The
structure is then cut as a pruning run's export cuts it (:mod:`~espnet_distill.prune.physical`), so its
description (``student.yaml`` keys: every layer's heads and FFN units, every convolution's channels) builds
exactly the counted size.  A drawn structure spreads the pruning evenly over the layers in expectation;
a trained one does not (DPHuBERT keeps more of the lower layers and prunes the CNN hardest), so its speed is
that of a structure of the same size, not of a trained pruned model.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from espnet_distill.components import build_student
from espnet_distill.prune.distill import Pruning
from espnet_distill.prune.gates import UNITS
from espnet_distill.prune.physical import prune_encoder, prune_frontend


def drawn_structure(
    description: Dict[str, Any],
    units: Sequence[str] = ("conv",) + UNITS,
    target_params: Optional[int] = None,
    target_ratio: Optional[float] = None,
    seed: int = 0,
    spread: float = 2.0,
) -> Tuple[Dict[str, Any], int]:
    """``(pruned description, its parameter count)`` of ``description`` (a student description: ``frontend``,
    ``frontend_conf``, ``encoder``, ``encoder_conf``) pruned at random to ``target_params`` (or
    ``target_ratio`` of its size)."""
    frontend, encoder = build_student(description)
    pruning = Pruning(frontend, encoder, units, target_params, target_ratio).eval()  # its target, checked
    gates, frontend_gates = pruning.gates, pruning.frontend_gates
    groups = [*gates.heads, *gates.ffn, *(frontend_gates.channels if frontend_gates is not None else [])]
    target = pruning.lagrangian.target_params
    generator = torch.Generator().manual_seed(seed)
    draws = [torch.randn(g.size, generator=generator) * spread for g in groups]

    def kept(offset: float) -> int:
        with torch.no_grad():
            for gate, draw in zip(groups, draws):
                gate.log_alpha.copy_(draw + offset)
        return pruning.kept_params()

    low, high = -40.0, 40.0  # the kept size grows with the offset
    for _ in range(60):
        middle = (low + high) / 2
        if kept(middle) < target:
            low = middle
        else:
            high = middle
    offset = min((low, high), key=lambda value: abs(kept(value) - target))
    size = kept(offset)
    _, encoder_conf = prune_encoder(encoder.eval(), description["encoder_conf"], frontend.output_size(), gates)
    frontend_conf = dict(description["frontend_conf"])
    if frontend_gates is not None:
        _, frontend_conf = prune_frontend(frontend.eval(), frontend_conf, frontend_gates)
    gates.remove()
    if frontend_gates is not None:
        frontend_gates.remove()
    pruned = {**description, "frontend_conf": frontend_conf, "encoder_conf": encoder_conf}
    return pruned, size
