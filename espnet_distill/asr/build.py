"""Building the CTC model that a fine-tuning's ``config.yaml`` describes, without ESPnet's task machinery.

Everything that reads a fine-tuned model (decoding, ``transcribe``, the exports,
``pack_model``) builds it here: importing ``espnet2.tasks`` (ESPnet's task,
trainer and every model family it registers, about 5 s and 0.6 GB) is for
training only.  :class:`espnet_distill.tasks.asr.ASRTask` builds its models
with :func:`build_ctc_model` too, so training and inference cannot build
different models from one config.

The config is checked before building (:func:`check_inference_config`): its
token list and each component's ``*_conf`` keys, each error naming the file
and the key; and the model file's CTC output size against the token list
(:func:`check_token_count`).
"""

import argparse
import inspect
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import yaml
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.encoder.linear_encoder import LinearEncoder
from espnet2.asr.encoder.rnn_encoder import RNNEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.train.class_choices import ClassChoices

from espnet_distill import components
from espnet_distill.asr.model import CTCASRModel
from espnet_distill.distill.export import load_student_statistics, load_student_weights
from espnet_distill.espnet_interop import ENCODER_NAME, MODEL_NAME, espnet_config
from espnet_distill.files.student_dir import read_description
from espnet_distill.superb.blstm import PaddedBLSTMEncoder
from espnet_distill.superb.featurizer import WeightedLayersFrontend
from espnet_distill.text.tokens import read_token_list
from espnet_distill.utils.checkpoint import CheckpointError, load_state_into, trained_state
from espnet_distill.utils.config import ConfigError

logger = logging.getLogger(__name__)

# Fine-tuning also evaluates frozen upstreams, SUPERB's way: the weighted layer sum of a frozen teacher or
# student as the front-end (``frontend: upstream``) and ESPnet's RNN encoder (``encoder: rnn``, SUPERB's ASR
# downstream; ``encoder: blstm`` computes its bidirectional LSTM without packed sequences, 4x faster on CPUs)
# or its linear encoder (``encoder: linear``, SUPERB's frame-level phoneme downstream).
frontend_choices = ClassChoices(
    name="frontend",
    classes={**components.FRONTENDS, "upstream": WeightedLayersFrontend},
    type_check=AbsFrontend,
    default="wav_cnn",
)
encoder_choices = ClassChoices(
    name="encoder",
    classes={**components.ENCODERS, "rnn": RNNEncoder, "blstm": PaddedBLSTMEncoder, "linear": LinearEncoder},
    type_check=AbsEncoder,
    default="transformer",
)
specaug_choices = ClassChoices(
    name="specaug", classes=dict(specaug=SpecAug), type_check=AbsSpecAug, default=None, optional=True
)


# What the task itself passes to each component besides its ``*_conf`` (a key of those in the conf is an error).
GIVEN_BY_TASK = {"frontend": (), "specaug": (), "encoder": ("input_size",), "ctc": ("odim", "encoder_output_size")}
CTC_WEIGHT = "ctc.ctc_lo.weight"


def espnet_asr_choices() -> Dict[str, Dict[str, type]]:
    """What ``import espnet_distill`` adds to ESPnet's ASR task (``espnet2.tasks.asr``) when it is imported
    (:func:`espnet_distill.seams.install_component_registration`): the front-ends, the encoder under
    :data:`~espnet_distill.espnet_interop.ENCODER_NAME` and the CTC model under ``MODEL_NAME``.
    Beside the builder, so that ESPnet's task and this project's build models from the same classes."""
    return {
        "frontend_choices": dict(components.FRONTENDS),
        "encoder_choices": {ENCODER_NAME: components.TransformerStudentEncoder},
        "model_choices": {MODEL_NAME: CTCASRModel},
    }


def _check_conf(config_file: Path, part: str, cls: type, conf: Any) -> None:
    """``<part>_conf`` is a mapping of keyword arguments ``cls`` takes; else a :class:`ConfigError` naming the key."""
    if conf is None:
        return
    if not isinstance(conf, Mapping):
        raise ConfigError(f"{config_file}: {part}_conf must be a mapping, got {conf!r}")
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # takes any keyword: building it says what it refuses
    given = GIVEN_BY_TASK.get(part, ())
    known = [
        name
        for name, p in list(parameters.items())[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY) and name not in given
    ]
    for key in conf:
        if key in given:
            raise ConfigError(f"{config_file}: {part}_conf: {key!r} is not a {part} option (the task sets it)")
        if key not in known:
            raise ConfigError(
                f"{config_file}: {part}_conf: unknown key {key!r} ({cls.__name__} takes {', '.join(known)})"
            )


def check_token_list(config: Mapping[str, Any], config_file: Path) -> None:
    """``token_list`` is there: a list of tokens or the path of an existing token list file."""
    token_list = config.get("token_list")
    if token_list is None:
        raise ConfigError(
            f"{config_file}: no token_list in it (the tokens of the CTC outputs); not the config of a fine-tuning run?"
        )
    if isinstance(token_list, str):
        if not Path(token_list).is_file():
            raise ConfigError(f"{config_file}: token_list: no such file {token_list}")
    elif not isinstance(token_list, list) or not token_list or not all(isinstance(t, str) for t in token_list):
        raise ConfigError(f"{config_file}: token_list must be a non-empty list of tokens or a file, got {token_list!r}")


def check_inference_config(config: Mapping[str, Any], config_file: Path) -> None:
    """What building the model of a fine-tuning ``config.yaml`` reads: each error names the file and the key."""
    check_token_list(config, config_file)
    for choices in (frontend_choices, specaug_choices, encoder_choices):
        name = config.get(choices.name, choices.default)
        if name is None:
            if choices.optional:
                continue
            raise ConfigError(f"{config_file}: {choices.name} is missing (one of {', '.join(choices.choices())})")
        cls = choices.classes.get(name.lower()) if isinstance(name, str) else None
        if cls is None:
            raise ConfigError(
                f"{config_file}: {choices.name}: unknown {name!r} (one of {', '.join(map(str, choices.choices()))})"
            )
        _check_conf(config_file, choices.name, cls, config.get(f"{choices.name}_conf"))
    _check_conf(config_file, "ctc", CTC, config.get("ctc_conf"))


def check_token_count(state: Any, model: torch.nn.Module, model_file: Path, config_file: Path) -> None:
    """The model file's CTC layer has one output per token of the config's token list (which sized ``model``'s).

    Only the number of outputs is checked here; any other mismatch is :func:`load_state_into`'s to name.
    """
    weight = state.get(CTC_WEIGHT) if isinstance(state, Mapping) else None
    expected = model.state_dict().get(CTC_WEIGHT)
    if not isinstance(weight, torch.Tensor) or expected is None or weight.dim() != 2:
        return
    if weight.shape[1:] == expected.shape[1:] and weight.shape[0] != expected.shape[0]:
        raise CheckpointError(
            f"{model_file}: its CTC layer has {weight.shape[0]} outputs but the token_list of {config_file} has "
            f"{expected.shape[0]} tokens: the token list is not the one this model was trained with"
        )


def student_structure(args: argparse.Namespace) -> Dict[str, Any]:
    """Fill ``frontend_conf``/``encoder_conf`` from ``--init_student``'s ``student.yaml``; YAML keys win.
    Returns the ``student.yaml``."""
    description = read_description(args.init_student)
    for part in ("frontend", "encoder"):
        if components.canonical_encoder(getattr(args, part)) != components.canonical_encoder(description[part]):
            raise ValueError(
                f"the config names {part}: {getattr(args, part)} but {args.init_student} holds a "
                f"{description[part]} {part}; make them agree"
            )
        setattr(args, f"{part}_conf", {**description[f"{part}_conf"], **getattr(args, f"{part}_conf")})
    return description


def _model_conf(args: argparse.Namespace) -> Dict[str, Any]:
    """``model_conf``, with no freezing for random weights (``args`` then records what ran)."""
    model_conf = dict(args.model_conf)
    freezes = bool(model_conf.get("freeze_frontend_steps") or model_conf.get("freeze_encoder_steps"))
    if freezes and not args.init_student_weights:
        # Freezing keeps pretrained weights; random ones must learn (a frozen random CNN is no reference).
        logger.info("from scratch: freeze_frontend_steps and freeze_encoder_steps set to 0")
        model_conf.update(freeze_frontend_steps=0, freeze_encoder_steps=0)
        args.model_conf = model_conf  # config.yaml records what ran
        freezes = False
    if freezes:
        args.unused_parameters = True  # frozen parameters get no gradients under DDP
    return model_conf


def build_ctc_model(args: argparse.Namespace) -> CTCASRModel:
    """The model of a fine-tuning's arguments (``--init_student``: its structure, and its weights unless
    ``init_student_weights`` is false).  ``args`` is left as ``config.yaml`` records it: the token list
    itself and the whole structure, nothing pointing back to the student."""
    token_list = read_token_list(args.token_list) if isinstance(args.token_list, str) else list(args.token_list)
    if args.init_student is not None:
        student_structure(args)
    frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
    encoder = encoder_choices.get_class(args.encoder)(input_size=frontend.output_size(), **args.encoder_conf)
    if args.init_student is not None and args.init_student_weights:
        load_student_weights(Path(args.init_student), frontend, encoder)
        logger.info("front-end and encoder initialised from %s", args.init_student)
    elif args.init_student is not None and load_student_statistics(Path(args.init_student), frontend):
        logger.info("from scratch, with the front-end's data statistics (CMVN) of %s", args.init_student)
    specaug = specaug_choices.get_class(args.specaug)(**args.specaug_conf) if args.specaug is not None else None
    ctc = CTC(odim=len(token_list), encoder_output_size=encoder.output_size(), **args.ctc_conf)
    model = CTCASRModel(
        vocab_size=len(token_list),
        token_list=token_list,
        frontend=frontend,
        specaug=specaug,
        normalize=None,
        preencoder=None,
        encoder=encoder,
        postencoder=None,
        ctc=ctc,
        joint_network=None,
        **_model_conf(args),
    )
    args.token_list = token_list
    args.encoder = components.canonical_encoder(args.encoder)
    args.init_student = None
    return model


def load_ctc_model(
    config: Mapping[str, Any],
    config_file: Path,
    model_file: Optional[Union[Path, str]] = None,
    device: str = "cpu",
) -> Tuple[CTCASRModel, argparse.Namespace]:
    """The model of a fine-tuning's ``config`` (read from ``config_file``, which errors name) with
    ``model_file``'s weights, loaded safely and strictly after their CTC output size is checked against
    the token list.  Returns the model and the arguments it was built from."""
    check_inference_config(config, config_file)
    args = argparse.Namespace(**espnet_config(dict(config)))
    try:
        model = build_ctc_model(args)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{config_file}: cannot build the model it describes: {e}") from e
    if model_file is not None:
        state = trained_state(model_file)
        check_token_count(state, model, Path(model_file), config_file)
        load_state_into(model, state, model_file)
        logger.info("loaded %s into the model of %s", model_file, config_file)
    return model.to(device), args


def ctc_args(description: Mapping[str, Any], token_list: Sequence[str], token_type: str = "char") -> argparse.Namespace:
    """The fine-tuning arguments :func:`build_ctc_model` takes for a structure (``frontend``, ``encoder`` and
    their ``*_conf``, as ``student.yaml`` holds them; other keys ignored) and a token list, nothing else set."""
    return argparse.Namespace(
        frontend=description["frontend"],
        frontend_conf=dict(description.get("frontend_conf") or {}),
        encoder=description["encoder"],
        encoder_conf=dict(description.get("encoder_conf") or {}),
        token_list=list(token_list),
        token_type=token_type,
        bpemodel=None,
        init_student=None,
        init_student_weights=True,
        specaug=None,
        specaug_conf={},
        ctc_conf={},
        model_conf={},
    )


def write_random_ctc_exp(
    description: Mapping[str, Any],
    token_list: Sequence[str],
    out_dir: Union[Path, str],
    seed: int = 0,
    model_file: str = "model.pth",
) -> Path:
    """A fine-tuning exp dir with random weights, for timings and tests: ``config.yaml`` and ``model_file``
    in ``out_dir``, which it returns.

    ``description`` is a student structure as ``student.yaml`` holds it (``frontend``, ``encoder`` and their
    ``*_conf``; other keys are ignored), ``token_list`` the CTC layer's tokens (``token_type: char``).  The
    weights are what :func:`build_ctc_model` draws after ``torch.manual_seed(seed)``; the caller's random
    state is restored.  ``config.yaml`` holds what a fine-tuning's holds of the model: the arguments as
    :func:`build_ctc_model` leaves them, in ESPnet's form (:func:`~espnet_distill.espnet_interop.espnet_config`:
    ``encoder: student_transformer``, ``model: ctc_student``), so that :func:`load_ctc_model` and ESPnet's
    own ``ASRTask.build_model_from_file`` load it.
    """
    args = ctc_args(description, token_list)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_ctc_model(args)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(espnet_config(vars(args))), encoding="utf-8")
    torch.save(model.state_dict(), out / model_file)
    return out
