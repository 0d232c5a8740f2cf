"""The frozen upstream of a SUPERB-style evaluation and its hidden states.

An upstream is named by a path:

- a student dir (``student.yaml``, ``student.pth``): a distilled student, or the teacher exported as
  one (``exp/teacher_student``, stage 7's teacher export); its hidden states are the encoder's input
  and each layer's output (:meth:`TransformerStudentEncoder.hidden_states`);
- a teacher spec (``teacher.yaml``, written by the teacher stage): the teacher as distillation loads
  it; its hidden states are :class:`~espnet_distill.teacher.hubert.TeacherOutput`'s.

With ``random_init`` a student dir gives its structure with random weights (seeded), keeping the
front-end's data statistics (Fbank CMVN): what an untrained upstream of that size scores.
"""

import logging
import math
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch

from espnet_distill.distill.export import build_student, load_student, load_student_statistics
from espnet_distill.files.student_dir import is_student_dir, read_description
from espnet_distill.files.teacher_spec import read_spec
from espnet_distill.frontend.conv import extractor_layers
from espnet_distill.teacher import load_teacher

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


class FrozenUpstream(torch.nn.Module):
    """A teacher, or a student's front-end and encoder, frozen (eval mode, no gradients).

    ``forward(speech, lengths)`` returns every hidden state, ``num_states`` tensors ``(batch, frames,
    output_size)``, and the frames of each utterance.
    """

    def __init__(
        self,
        frontend: Optional[torch.nn.Module] = None,
        encoder: Optional[torch.nn.Module] = None,
        teacher: Optional[torch.nn.Module] = None,
    ) -> None:
        super().__init__()
        if (teacher is None) == (encoder is None):
            raise ValueError("an upstream is a teacher, or a student's front-end and encoder")
        self.frontend, self.encoder, self.teacher = frontend, encoder, teacher
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenUpstream":
        """An upstream stays in eval mode (no dropout) whatever its parent does."""
        return super().train(False)

    @property
    def num_states(self) -> int:
        layers = self.teacher.num_layers if self.teacher is not None else self.encoder.num_layers
        return layers + 1

    @property
    def frame_shift(self) -> int:
        """Samples per frame of the hidden states."""
        if self.teacher is None:
            return int(self.frontend.frame_shift)
        return math.prod(stride for _, _, stride in extractor_layers(self.teacher.model.feature_extractor))

    def output_size(self) -> int:
        if self.teacher is not None:
            return self.teacher.hidden_size
        return self.encoder.output_size()

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        if self.teacher is not None:
            output = self.teacher(speech, lengths)
            return output.hidden_states, output.lengths
        feats, feat_lengths = self.frontend(speech, lengths)
        return self.encoder.hidden_states(feats, feat_lengths)


def load_upstream(path: PathLike, random_init: bool = False, seed: int = 0) -> FrozenUpstream:
    """The frozen upstream of a student dir or a teacher spec file (see the module's docstring)."""
    path = Path(path)
    if is_student_dir(path):
        if not random_init:
            frontend, encoder, _ = load_student(path)
            return FrozenUpstream(frontend=frontend, encoder=encoder)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            frontend, encoder = build_student(read_description(path))
        kept = load_student_statistics(path, frontend)
        logger.info("%s: its structure with random weights (seed %d; %d statistics tensors kept)", path, seed, kept)
        return FrozenUpstream(frontend=frontend, encoder=encoder)
    if path.is_file():
        if random_init:
            raise ValueError(f"{path}: random_init needs a student dir (a teacher spec has no structure to rebuild)")
        spec = read_spec(path)
        return FrozenUpstream(teacher=load_teacher(spec["teacher"], **spec["teacher_conf"]))
    raise FileNotFoundError(
        f"{path}: not an upstream (a student dir with student.yaml and student.pth, or a teacher.yaml)"
    )
