"""Frozen HuBERT teachers loaded from fairseq, Hugging Face, torchaudio or ESPnet checkpoints.

Loading only: :mod:`~espnet_distill.teacher.loaders` dispatches by format name to one module per format
(``fairseq``, ``huggingface``, ``wavlm``, ``torchaudio_format``, ``espnet_format``, ``untrained``; ``data2vec``
for data2vec-audio's positional embedding), which all build through :mod:`~espnet_distill.teacher.build`
the frozen :class:`~espnet_distill.teacher.hubert.HubertTeacher`.  Making teachers (HuBERT's k-means
targets and pretraining, teacher codebooks) is :mod:`espnet_distill.make_teacher`.
"""

from espnet_distill.teacher.hubert import HubertTeacher, TeacherOutput  # noqa: F401
from espnet_distill.teacher.loaders import LOADERS, load_teacher  # noqa: F401
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint  # noqa: F401
