"""Registries of student components shared by the distillation and ASR tasks.

A front-end or encoder registered here can be named in the YAML of both tasks
(``frontend: wav_cnn``), so that a distilled student fine-tunes unchanged.  The
encoder's name in ESPnet's own ASR task is ``student_transformer`` (ESPnet's
``transformer`` is another encoder; see :mod:`espnet_distill.espnet_interop`);
this project's YAML may say either.
"""

from typing import Any, Dict, Tuple

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.train.class_choices import ClassChoices

from espnet_distill.espnet_interop import (  # noqa: F401 (canonical_encoder: callers' name)
    ENCODER_NAME,
    MODEL_NAME,
    canonical_encoder,
)
from espnet_distill.frontend.fbank import FbankFrontend
from espnet_distill.frontend.wav_cnn import WavCNNFrontend
from espnet_distill.student.encoder import TransformerStudentEncoder

FRONTENDS = dict(wav_cnn=WavCNNFrontend, fbank=FbankFrontend)
ENCODERS = {"transformer": TransformerStudentEncoder, ENCODER_NAME: TransformerStudentEncoder}


def frontend_choices() -> ClassChoices:
    return ClassChoices(name="frontend", classes=dict(FRONTENDS), type_check=AbsFrontend, default="wav_cnn")


def encoder_choices() -> ClassChoices:
    return ClassChoices(name="encoder", classes=dict(ENCODERS), type_check=AbsEncoder, default="transformer")


def build_student(description: Dict[str, Any]) -> Tuple[AbsFrontend, AbsEncoder]:
    """The front-end and encoder of a ``student.yaml`` description (random weights)."""
    frontend = frontend_choices().get_class(description["frontend"])(**description["frontend_conf"])
    encoder = encoder_choices().get_class(description["encoder"])(
        input_size=frontend.output_size(), **description["encoder_conf"]
    )
    return frontend, encoder
