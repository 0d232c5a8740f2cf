"""Loaders of self-supervised teachers in the formats real users have: the dispatch by format name.

Each loader maps its checkpoint onto torchaudio's ``Wav2Vec2Model`` (HuBERT,
wav2vec 2.0 and data2vec-audio layers, or WavLM's) and HuBERT's codeword head
where the checkpoint has one, through the shared builder
(:mod:`~espnet_distill.teacher.build`), and returns a :class:`HubertTeacher`.
One module per format:

- ``fairseq`` (:mod:`~espnet_distill.teacher.fairseq`): HuBERT and wav2vec 2.0
  files, pretrained or fine-tuned (``args`` over ``cfg`` as fairseq reads them;
  ``model``; HuBERT's ``final_proj`` and ``label_embs_concat``);
- ``huggingface`` (:mod:`~espnet_distill.teacher.huggingface`): a ``HubertModel``,
  ``Wav2Vec2Model``, ``WavLMModel`` or ``Data2VecAudioModel`` directory, or its
  ``*ForCTC`` (``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``);
  no codeword head; data2vec-audio's positional embedding is
  :mod:`~espnet_distill.teacher.data2vec`'s;
- ``wavlm`` (:mod:`~espnet_distill.teacher.wavlm`): Microsoft's original WavLM
  checkpoints (``cfg``, ``model``);
- ``torchaudio`` (:mod:`~espnet_distill.teacher.torchaudio_format`):
  ``{"config": <builder kwargs>, "model": <state dict>}`` of ``wav2vec2_model`` or
  ``hubert_pretrain_model`` (what this project's HuBERT pretraining writes, and
  the released teacher);
- ``espnet`` (:mod:`~espnet_distill.teacher.espnet_format`): a checkpoint of
  ESPnet's HuBERT task (``encoder: torchaudio_hubert``) with the ``config.yaml``
  of its experiment;
- ``untrained`` (:mod:`~espnet_distill.teacher.untrained`): no checkpoint: HuBERT
  Base's structure (or fairseq-style overrides of it) with random weights and a
  random codeword head, for dry runs that build and size a paper-scale recipe's
  models without the real file.
"""

from pathlib import Path
from typing import Any

from espnet_distill.teacher.espnet_format import load_espnet
from espnet_distill.teacher.fairseq import load_fairseq
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.teacher.huggingface import load_huggingface
from espnet_distill.teacher.torchaudio_format import load_torchaudio
from espnet_distill.teacher.untrained import load_untrained
from espnet_distill.teacher.wavlm import load_wavlm
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.fileio import sha256_file

__all__ = [
    "LOADERS",
    "load_teacher",
    "load_fairseq",
    "load_wavlm",
    "load_huggingface",
    "load_torchaudio",
    "load_espnet",
    "load_untrained",
]

LOADERS = {
    "fairseq": load_fairseq,
    "wavlm": load_wavlm,
    "huggingface": load_huggingface,
    "torchaudio": load_torchaudio,
    "espnet": load_espnet,
    "untrained": load_untrained,
}


def load_teacher(name: str, **conf: Any) -> HubertTeacher:
    """Build the teacher chosen in YAML: ``teacher: <name>``, ``teacher_conf: {path: ...}``.

    ``teacher_conf.sha256`` (optional): the checkpoint file's expected SHA-256, checked before it is read.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown teacher format {name!r}; choose from {sorted(LOADERS)}")
    expected = conf.pop("sha256", None)
    if expected is not None:
        path = Path(conf.get("path", ""))
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file (teacher_conf.sha256 needs a file)")
        actual = sha256_file(path)
        if actual != str(expected).lower():
            raise CheckpointError(
                f"{path}: sha256 {actual} is not the expected {expected} (teacher_conf.sha256, or --teacher_sha256 "
                f"/ {path.name}.sha256 in a recipe): the file is not the one it should be"
            )
    return LOADERS[name](**conf)
