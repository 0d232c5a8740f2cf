"""The CTC ASR task on ESPnet's task and trainer machinery.

``python -m espnet_distill.bin.asr_train --config conf/finetune/<name>.yaml
--init_student exp/distill_<name> ...`` fine-tunes a distilled student (or the
teacher, exported as a student by ``espnet_distill.bin.export_teacher``) with
CTC.  The front-end and encoder are named in the YAML like ESPnet's own
components (``frontend: wav_cnn``, ``encoder: transformer``); their structure
comes from the student's ``student.yaml`` and must agree with those names.
The ``config.yaml`` a fine-tuning writes is self-contained and in ESPnet's
form (see :mod:`espnet_distill.espnet_interop`): the whole structure and token
list, no path back to the student, and the names ESPnet's own ASR task knows
(``encoder: student_transformer``, ``model: ctc_student``).
``--init_student_weights false`` trains the same structure from scratch; then
nothing is frozen, whatever ``model_conf`` says (freezing keeps pretrained weights).

:meth:`ASRTask.build_model_from_file` (what every command that loads a
fine-tuned model goes through) checks the ``config.yaml`` before building:
its token list and each component's ``*_conf`` keys, each error naming the
file and the key; and the model file's CTC output size against the token list.
"""

import argparse
import inspect
import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import yaml
from espnet2.asr.ctc import CTC
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.train.class_choices import ClassChoices
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none

from espnet_distill import components
from espnet_distill.asr.model import CTCASRModel
from espnet_distill.data.collate import PadCollate
from espnet_distill.distill.export import load_student_statistics, load_student_weights
from espnet_distill.espnet_interop import ESPNET_DEFAULTS, espnet_config
from espnet_distill.tasks.abs_task import SafeTask, read_training_config, trained_state, training_config_path
from espnet_distill.text.tokens import TOKEN_TYPES, Tokenizer, read_token_list
from espnet_distill.utils.checkpoint import CheckpointError, load_state_into
from espnet_distill.utils.config import ConfigError
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.provenance import STUDENT_SOURCE

frontend_choices = components.frontend_choices()
encoder_choices = components.encoder_choices()
specaug_choices = ClassChoices(
    name="specaug", classes=dict(specaug=SpecAug), type_check=AbsSpecAug, default=None, optional=True
)


class TokenizeText:
    """ESPnet preprocess function: the ``text`` transcript to an array of token ids."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, uid: str, data: Dict) -> Dict:
        if "text" in data:
            ids = self.tokenizer.encode(data["text"])
            if not ids:
                raise ValueError(f"utterance {uid!r}: empty transcript")
            data["text"] = np.asarray(ids, dtype=np.int64)
        return data


def student_source(
    student_dir: Path, init_weights: bool, description: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """What a fine-tuning starts from, read from the student's files (not from any directory name).

    ``kind``: ``teacher`` (the teacher exported as a student), ``distilled`` or ``scratch`` (the
    structure with random weights); ``frontend`` and ``structure`` (layers, width, FFN) from its
    ``student.yaml``; ``loss`` (``reg`` or ``reg + KL``, distilled students only) and the distillation
    config from the distillation run's ``config.yaml``.
    """
    if description is None:
        description = yaml.safe_load((student_dir / "student.yaml").read_text(encoding="utf-8"))
    encoder_conf = description.get("encoder_conf", {})
    if not init_weights:
        kind = "scratch"  # the structure with random weights, whatever it came from
    elif description.get("source") == "teacher":
        kind = "teacher"
    else:
        kind = "distilled"
    source: Dict[str, Any] = {
        "init_student": str(student_dir),
        "init_student_weights": init_weights,
        "kind": kind,
        "frontend": description.get("frontend"),
        "structure": {k: encoder_conf.get(k) for k in ("num_layers", "output_size", "ffn_dim")},
        "loss": None,
        "distill_config": None,
    }
    distill_config = student_dir / "config.yaml"
    if kind == "distilled" and distill_config.is_file():
        config = yaml.safe_load(distill_config.read_text(encoding="utf-8")) or {}
        weight = float((config.get("model_conf") or {}).get("discriminative_weight") or 0.0)
        source["loss"] = "reg + KL" if weight > 0 else "reg"
        source["distill_config"] = config.get("config")
    return source


def write_student_source(
    output_dir: Path, student_dir: Path, init_weights: bool, description: Optional[Dict[str, Any]] = None
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(output_dir / STUDENT_SOURCE) as f:
        json.dump(student_source(student_dir, init_weights, description), f, indent=2)


# What the task itself passes to each component besides its ``*_conf`` (a key of those in the conf is an error).
GIVEN_BY_TASK = {"frontend": (), "specaug": (), "encoder": ("input_size",), "ctc": ("odim", "encoder_output_size")}
CTC_WEIGHT = "ctc.ctc_lo.weight"


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


class ASRTask(SafeTask):
    """CTC fine-tuning of a student front-end and encoder."""

    num_optimizers: int = 1
    class_choices_list = [frontend_choices, specaug_choices, encoder_choices]

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="Task related")
        required = parser.get_default("required")
        required += ["token_list"]
        group.add_argument("--token_list", type=str_or_none, default=None, help="token list (one token per line)")
        group.add_argument("--token_type", type=str, default="bpe", choices=list(TOKEN_TYPES))
        group.add_argument(
            "--bpemodel", type=str_or_none, default=None, help="sentencepiece model for --token_type bpe"
        )
        group.add_argument(
            "--init_student",
            type=str_or_none,
            default=None,
            help="a distillation exp dir (student.yaml, student.pth) giving the structure and weights",
        )
        group.add_argument(
            "--init_student_weights",
            type=str2bool,
            default=True,
            help="false: the structure of --init_student with random weights (the from-scratch reference)",
        )
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=dict(freeze_frontend_steps=0, freeze_encoder_steps=0, report_cer=True, report_wer=True),
            help="CTCASRModel arguments",
        )
        group.add_argument(
            "--ctc_conf", action=NestedDictAction, default=get_default_kwargs(CTC), help="ESPnet's CTC arguments"
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        # ESPnet's ASRTask reads these when it rebuilds the model from config.yaml.
        parser.set_defaults(num_att_plot=0, **ESPNET_DEFAULTS)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return PadCollate(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        token_list = read_token_list(args.token_list) if isinstance(args.token_list, str) else args.token_list
        return TokenizeText(Tokenizer(token_list, args.token_type, args.bpemodel))

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",) if inference else ("speech", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    def student_structure(cls, args: argparse.Namespace) -> Dict[str, Any]:
        """Fill ``frontend_conf``/``encoder_conf`` from ``--init_student``'s ``student.yaml``; YAML keys win.
        Returns the ``student.yaml``."""
        description = yaml.safe_load((Path(args.init_student) / "student.yaml").read_text(encoding="utf-8"))
        for part in ("frontend", "encoder"):
            if components.canonical_encoder(getattr(args, part)) != components.canonical_encoder(description[part]):
                raise ValueError(
                    f"the config names {part}: {getattr(args, part)} but {args.init_student} holds a "
                    f"{description[part]} {part}; make them agree"
                )
            setattr(args, f"{part}_conf", {**description[f"{part}_conf"], **getattr(args, f"{part}_conf")})
        return description

    @classmethod
    def inference_args(cls, args: argparse.Namespace) -> argparse.Namespace:
        """config.yaml holds the whole structure; the weights come from the model file, not ``init_student``."""
        return argparse.Namespace(**espnet_config(vars(args)))

    @classmethod
    def build_model_from_config(
        cls,
        config: Mapping[str, Any],
        config_file: Path,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[CTCASRModel, argparse.Namespace]:
        """The model of ``config`` (read from ``config_file``, which errors name) with ``model_file``'s weights.

        The config is checked first (:func:`check_inference_config`); the weights
        are loaded safely and strictly, after their CTC output size is checked
        against the token list.
        """
        check_inference_config(config, config_file)
        args = cls.inference_args(argparse.Namespace(**config))
        try:
            model = cls.build_model(args)
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError) as e:
            raise ConfigError(f"{config_file}: cannot build the model it describes: {e}") from e
        if model_file is not None:
            state = trained_state(model_file)
            check_token_count(state, model, Path(model_file), config_file)
            load_state_into(model, state, model_file)
            logging.info("loaded %s into the model of %s", model_file, config_file)
        return model.to(device), args

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[CTCASRModel, argparse.Namespace]:
        """The model of ``config_file`` (default: ``config.yaml`` beside ``model_file``) with ``model_file``'s
        weights; see :meth:`build_model_from_config`."""
        config_file = training_config_path(config_file, model_file)
        return cls.build_model_from_config(read_training_config(config_file), config_file, model_file, device)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> CTCASRModel:
        token_list = read_token_list(args.token_list) if isinstance(args.token_list, str) else list(args.token_list)
        description = cls.student_structure(args) if args.init_student is not None else None
        frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
        encoder = encoder_choices.get_class(args.encoder)(input_size=frontend.output_size(), **args.encoder_conf)
        if args.init_student is not None and getattr(args, "output_dir", None):
            write_student_source(
                Path(args.output_dir), Path(args.init_student), bool(args.init_student_weights), description
            )
        if args.init_student is not None and args.init_student_weights:
            load_student_weights(Path(args.init_student), frontend, encoder)
            logging.info("front-end and encoder initialised from %s", args.init_student)
        elif args.init_student is not None and load_student_statistics(Path(args.init_student), frontend):
            logging.info("from scratch, with the front-end's data statistics (CMVN) of %s", args.init_student)
        specaug = specaug_choices.get_class(args.specaug)(**args.specaug_conf) if args.specaug is not None else None
        ctc = CTC(odim=len(token_list), encoder_output_size=encoder.output_size(), **args.ctc_conf)
        model_conf = dict(args.model_conf)
        freezes = bool(model_conf.get("freeze_frontend_steps") or model_conf.get("freeze_encoder_steps"))
        if freezes and not args.init_student_weights:
            # Freezing keeps pretrained weights; random ones must learn (a frozen random CNN is no reference).
            logging.info("from scratch: freeze_frontend_steps and freeze_encoder_steps set to 0")
            model_conf.update(freeze_frontend_steps=0, freeze_encoder_steps=0)
            args.model_conf = model_conf  # config.yaml records what ran
            freezes = False
        if freezes:
            args.unused_parameters = True  # frozen parameters get no gradients under DDP
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
            **model_conf,
        )
        # config.yaml then holds the token list itself, as ESPnet's does, and nothing points
        # back to the student: the structure is in frontend_conf/encoder_conf.
        args.token_list = token_list
        args.encoder = components.canonical_encoder(args.encoder)
        args.init_student = None
        return model
