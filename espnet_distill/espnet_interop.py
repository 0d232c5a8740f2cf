"""ESPnet's own ASR tools on the models fine-tuned here: the names and config form they need.

``import espnet_distill`` makes ESPnet's ASR task (``espnet2.tasks.asr``) know
this project's components (the hook is
:func:`espnet_distill.seams.install_component_registration`), so that ESPnet's
``Speech2Text``, ``espnet2.bin.asr_inference`` and
``ASRTask.build_model_from_file`` load a fine-tuned ``config.yaml`` as they
load their own:

- front-ends ``wav_cnn`` and ``fbank`` (no ESPnet front-end has those names);
- encoder ``student_transformer`` (:data:`ENCODER_NAME`: this project's
  ``transformer``; ESPnet's ``transformer`` is another encoder, so a
  fine-tuning's ``config.yaml`` records the unambiguous name);
- model ``ctc_student`` (:data:`MODEL_NAME`,
  :class:`~espnet_distill.asr.model.CTCASRModel`).

This module holds those names and :func:`espnet_config`, the config in the
form ESPnet reads; every patch of ESPnet is in :mod:`espnet_distill.seams`.
"""

from typing import Any, Dict, Optional

ENCODER_NAME = "student_transformer"
MODEL_NAME = "ctc_student"
# This project's YAML may name its encoder ``transformer``; ESPnet's task knows it as ENCODER_NAME.
ENCODER_ALIASES = dict(transformer=ENCODER_NAME)
# Keys ESPnet's ASRTask.build_model reads that this project's task has no option for.
ESPNET_DEFAULTS: Dict[str, Any] = dict(
    input_size=None,
    normalize=None,
    normalize_conf={},
    preencoder=None,
    preencoder_conf={},
    postencoder=None,
    postencoder_conf={},
    decoder=None,
    decoder_conf={},
    init=None,
    model=MODEL_NAME,
    use_preprocessor=False,  # ESPnet's text preprocessing: this task tokenizes in its own preprocess function
)


def espnet_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """A fine-tuning ``config.yaml`` (as a dict) in the form ESPnet's ``ASRTask.build_model`` reads.

    Configs written before the ESPnet names existed say ``encoder: transformer``
    and lack ESPnet's keys; the structure itself is already complete in them.
    ``init_student`` (the distillation exp dir the weights started from) is
    dropped: the model file holds the weights.
    """
    out = {**ESPNET_DEFAULTS, **config}
    out["encoder"] = canonical_encoder(out.get("encoder"))
    out["init_student"] = None
    return out


def canonical_encoder(name: Optional[str]) -> Optional[str]:
    """The name an encoder has in ESPnet's ASR task (``transformer`` -> ``student_transformer``)."""
    return ENCODER_ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
