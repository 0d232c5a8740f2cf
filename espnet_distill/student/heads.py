"""Prediction heads: which teacher layer each student output regresses.

``head: multitask`` (DistilHuBERT): one head per target teacher layer, all on
the student's last layer; each head is DistilHuBERT's small MLP (a linear
layer to ``inter_dim``, GELU, a linear layer to the teacher's width), or with
``kind: linear`` a single linear layer.  ``head: layer_to_layer``
(FitHuBERT-like): one linear per student layer, each to its mapped teacher
layer.  Heads are used only during distillation.
"""

from abc import ABC, abstractmethod
from typing import List, Optional, Sequence, Tuple

import torch

Predictions = List[Tuple[int, torch.Tensor]]


class AbsPredictionHeads(torch.nn.Module, ABC):
    """Maps student hidden states to ``(teacher_layer, prediction)`` pairs."""

    @abstractmethod
    def forward(self, student_states: List[torch.Tensor]) -> Predictions:
        raise NotImplementedError

    @property
    @abstractmethod
    def teacher_layers(self) -> List[int]:
        raise NotImplementedError


def thirds(num_teacher_layers: int) -> List[int]:
    """DistilHuBERT's targets scaled to the teacher: 4/8/12 of 12; 1/3/4 of 4."""
    layers = sorted({max(1, round(num_teacher_layers * k / 3)) for k in (1, 2, 3)})
    return layers


def _check_layers(layers: Sequence[int], num_teacher_layers: int, what: str) -> None:
    bad = [layer for layer in layers if not 0 <= layer <= num_teacher_layers]
    if bad:
        raise ValueError(f"{what}: teacher layers {bad} are outside 0..{num_teacher_layers}")


HEAD_KINDS = ("mlp", "linear")


class MultiTaskHeads(AbsPredictionHeads):
    """DistilHuBERT heads: ``target_layers`` (default: thirds of the teacher) from the last student layer.

    Args:
        kind: ``mlp`` (DistilHuBERT's: linear to ``inter_dim``, GELU, linear to the
            teacher's width; 3.54 M parameters for 3 targets at 768) or ``linear``.
        inter_dim: the MLP's intermediate size (default: the teacher's width, 768 for HuBERT Base).
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_student_layers: int,
        num_teacher_layers: int,
        target_layers: Optional[Sequence[int]] = None,
        kind: str = "mlp",
        inter_dim: Optional[int] = None,
    ) -> None:
        super().__init__()
        self._layers = list(target_layers) if target_layers is not None else thirds(num_teacher_layers)
        _check_layers(self._layers, num_teacher_layers, "head_conf.target_layers")
        if kind not in HEAD_KINDS:
            raise ValueError(f"head_conf.kind: {kind!r} is not one of {', '.join(HEAD_KINDS)}")
        if kind == "linear" and inter_dim is not None:
            raise ValueError("head_conf.inter_dim is the MLP's intermediate size: it needs kind: mlp")
        inter = inter_dim or teacher_dim

        def head() -> torch.nn.Module:
            if kind == "linear":
                return torch.nn.Linear(student_dim, teacher_dim)
            return torch.nn.Sequential(
                torch.nn.Linear(student_dim, inter), torch.nn.GELU(), torch.nn.Linear(inter, teacher_dim)
            )

        self.heads = torch.nn.ModuleList(head() for _ in self._layers)

    @property
    def teacher_layers(self) -> List[int]:
        return list(self._layers)

    def forward(self, student_states: List[torch.Tensor]) -> Predictions:
        last = student_states[-1]
        return [(layer, head(last)) for layer, head in zip(self._layers, self.heads)]


class LayerToLayerHeads(AbsPredictionHeads):
    """One linear per student layer ``i`` of ``student_layers`` to teacher layer ``layer_map`` (in order).

    Args:
        student_layers: the student's hidden states that get a head, 1-based layers, ``0`` the encoder's
            input (the projected front-end features); default every layer (``1..L_student``).  DPHuBERT's
            released recipe distills the projected CNN features and layers 4, 8 and 12: ``[0, 4, 8, 12]``.
        layer_map: the teacher layer of each; default the same relative depth,
            ``round(i * L_teacher / L_student)`` (``0`` for ``0``).
        identity_init: start each head as the identity (student and teacher of one width): a student that
            starts as a copy of the teacher (pruning) then starts at zero loss, as in DPHuBERT.
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_student_layers: int,
        num_teacher_layers: int,
        layer_map: Optional[Sequence[int]] = None,
        student_layers: Optional[Sequence[int]] = None,
        identity_init: bool = False,
    ) -> None:
        super().__init__()
        if identity_init and student_dim != teacher_dim:
            raise ValueError(
                f"head_conf.identity_init: a student of width {student_dim} cannot start as the identity to a "
                f"teacher of width {teacher_dim}"
            )
        if student_layers is None:
            student_layers = list(range(1, num_student_layers + 1))
        bad = [i for i in student_layers if not 0 <= i <= num_student_layers]
        if bad or len(set(student_layers)) != len(student_layers) or not student_layers:
            raise ValueError(
                f"head_conf.student_layers: {list(student_layers)} must be distinct layers of 0..{num_student_layers}"
            )
        if layer_map is None:
            layer_map = [
                max(1, round(i * num_teacher_layers / num_student_layers)) if i > 0 else 0 for i in student_layers
            ]
        if len(layer_map) != len(student_layers):
            raise ValueError(
                f"head_conf.layer_map has {len(layer_map)} entries for {len(student_layers)} student layers"
            )
        _check_layers(layer_map, num_teacher_layers, "head_conf.layer_map")
        self._layers = list(layer_map)
        self._student_layers = list(student_layers)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(student_dim, teacher_dim) for _ in self._layers)
        if identity_init:
            with torch.no_grad():
                for head in self.heads:
                    head.weight.copy_(torch.eye(teacher_dim))
                    head.bias.zero_()

    @property
    def teacher_layers(self) -> List[int]:
        return list(self._layers)

    def forward(self, student_states: List[torch.Tensor]) -> Predictions:
        return [
            (layer, head(student_states[i])) for layer, head, i in zip(self._layers, self.heads, self._student_layers)
        ]
