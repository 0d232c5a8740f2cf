"""The ``espnet`` teacher format: a checkpoint of ESPnet's HuBERT task with its experiment's ``config.yaml``.

Only the task's ``encoder: torchaudio_hubert`` (torchaudio's ``hubert_pretrain_model`` under
``encoder.hubert_pretrain_model.``) is read; its builder arguments are the ``encoder_conf`` over the
defaults of ESPnet's ``TorchAudioHuBERTPretrainEncoder``, its codeword head split off as in the
``torchaudio`` format (:func:`~espnet_distill.teacher.torchaudio_format.pretrain_head`).
"""

import inspect
from pathlib import Path
from typing import Mapping, Optional

import yaml

from espnet_distill.teacher.build import TRUST_HINT, PathLike, build_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.teacher.torchaudio_format import pretrain_head
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint


def load_espnet(path: PathLike, config: Optional[PathLike] = None, trust_checkpoint: bool = False) -> HubertTeacher:
    """A checkpoint of ESPnet's HuBERT task with its ``config.yaml``.

    ``config`` defaults to ``config.yaml`` next to the checkpoint.
    """
    path = Path(path)
    config_path = Path(config) if config is not None else path.parent / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{path}: no ESPnet config {config_path} (pass teacher_conf.config)")
    with open(config_path, encoding="utf-8") as f:
        espnet_config = yaml.safe_load(f) or {}
    if espnet_config.get("encoder") != "torchaudio_hubert":
        raise CheckpointError(
            f"{config_path}: encoder is {espnet_config.get('encoder')!r}; only 'torchaudio_hubert' is supported"
        )
    from espnet2.asr.encoder.hubert_encoder import TorchAudioHuBERTPretrainEncoder

    defaults = {
        name: p.default
        for name, p in inspect.signature(TorchAudioHuBERTPretrainEncoder.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    encoder_config = {**defaults, **(espnet_config.get("encoder_conf") or {})}
    checkpoint = load_checkpoint(path, trust=trust_checkpoint, trust_hint=TRUST_HINT)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not an ESPnet model checkpoint")
    body, head = pretrain_head(state, prefix="encoder.hubert_pretrain_model.")
    if not body:
        raise CheckpointError(f"{path}: no 'encoder.hubert_pretrain_model.wav2vec2.*' keys")
    return build_teacher(encoder_config, body, path, head)
