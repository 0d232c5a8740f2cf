"""The frozen upstream of a SUPERB-style evaluation and its hidden states.

An upstream is named by a path:

- a student dir (``student.yaml``, ``student.pth``): a distilled student, or the teacher exported as
  one (``exp/teacher_student``, stage 7's teacher export); its hidden states are the encoder's input
  and each layer's output (:meth:`TransformerStudentEncoder.hidden_states`);
- a teacher spec (``teacher.yaml``, written by the teacher stage): the teacher as distillation loads
  it; its hidden states are :class:`~espnet_distill.teacher.hubert.TeacherOutput`'s.

With ``random_init`` a student dir gives its structure with random weights (seeded), keeping the
front-end's data statistics (Fbank CMVN): what an untrained upstream of that size scores.

``fbank`` names the log-mel baseline: the recipes' Kaldi fbank with the training set's global CMVN
(``stats_file``), one "hidden state" of ``num_mel_bins`` features every 10 ms.
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
from espnet_distill.frontend.fbank import FbankFrontend
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


class LogMelUpstream(torch.nn.Module):
    """The log-mel baseline as an upstream: normalized Kaldi filterbanks, one state."""

    def __init__(self, stats_file: Optional[PathLike], fbank_conf: Optional[dict] = None) -> None:
        super().__init__()
        # The Fbank front-end's feature half (Kaldi fbank, CMVN); its convolution and projection are not used.
        self.features = FbankFrontend(output_dim=2, conv_channels=1, stats_file=stats_file, fbank_conf=fbank_conf)
        del self.features.conv, self.features.projection
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LogMelUpstream":
        return super().train(False)

    num_states = 1

    @property
    def frame_shift(self) -> int:
        return int(self.features.fbank.window_shift)

    def output_size(self) -> int:
        return int(self.features.fbank.opts.num_mel_bins)

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        feats, feat_lengths = self.features.features(speech, lengths)
        return [feats], feat_lengths


def load_upstream(
    path: PathLike,
    random_init: bool = False,
    seed: int = 0,
    stats_file: Optional[PathLike] = None,
    fbank_conf: Optional[dict] = None,
) -> Union[FrozenUpstream, LogMelUpstream]:
    """The frozen upstream of a student dir or a teacher spec file, or ``fbank`` (``stats_file``:
    the CMVN statistics, ``fbank_conf``: the Kaldi fbank options): see the module's docstring."""
    if str(path) == "fbank":
        if stats_file is None:
            raise ValueError("the fbank upstream needs stats_file (the training set's feats_stats.npz)")
        return LogMelUpstream(stats_file, fbank_conf)
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
