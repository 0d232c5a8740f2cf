"""Frozen HuBERT teachers loaded from fairseq, Hugging Face, torchaudio or ESPnet checkpoints."""

from espnet_distill.teacher.hubert import HubertTeacher, TeacherOutput  # noqa: F401
from espnet_distill.teacher.loaders import LOADERS, load_teacher  # noqa: F401
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint  # noqa: F401
