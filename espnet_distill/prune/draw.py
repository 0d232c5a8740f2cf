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
from espnet_distill.prune.gates import UNITS, EncoderGates, FrontendGates
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
    if (target_params is None) == (target_ratio is None):
        raise ValueError("give target_params or target_ratio (one of them)")
    frontend, encoder = build_student(description)
    gates = EncoderGates(encoder, units).eval()
    frontend_gates = FrontendGates(frontend).eval() if "conv" in units else None
    groups = [*gates.heads, *gates.ffn, *(frontend_gates.channels if frontend_gates is not None else [])]
    full = sum(p.numel() for p in frontend.parameters()) + gates.full_params()
    target = int(target_params) if target_params is not None else int(round(full * float(target_ratio)))
    if not 0 < target < full:
        raise ValueError(f"a target of {target} parameters for a structure of {full}")
    generator = torch.Generator().manual_seed(seed)
    draws = [torch.randn(g.size, generator=generator) * spread for g in groups]

    def kept(offset: float) -> int:
        with torch.no_grad():
            for gate, draw in zip(groups, draws):
                gate.log_alpha.copy_(draw + offset)
        frontend_size = (
            frontend_gates.kept_params()
            if frontend_gates is not None
            else sum(p.numel() for p in frontend.parameters())
        )
        return int(frontend_size + gates.kept_params())

    low, high = -40.0, 40.0  # the kept size grows with the offset
    for _ in range(60):
        middle = (low + high) / 2
        if kept(middle) < target:
            low = middle
        else:
            high = middle
    offset = min((low, high), key=lambda value: abs(kept(value) - target))
    size = kept(offset)
    pruned_encoder, encoder_conf = prune_encoder(
        encoder.eval(), description["encoder_conf"], frontend.output_size(), gates
    )
    frontend_conf = dict(description["frontend_conf"])
    if frontend_gates is not None:
        _, frontend_conf = prune_frontend(frontend.eval(), frontend_conf, frontend_gates)
    gates.remove()
    if frontend_gates is not None:
        frontend_gates.remove()
    pruned = {**description, "frontend_conf": frontend_conf, "encoder_conf": encoder_conf}
    return pruned, size
