"""The distillation task on ESPnet's task and trainer machinery.

``python -m espnet_distill.bin.distill_train --config conf/distill/<name>.yaml``
gives what ESPnet users expect of ``espnet2.bin.*_train``: YAML plus
command-line overrides, a resolved ``config.yaml`` in the output dir, resume
(``--resume true``), DDP (``--ngpu``, ``espnet2.bin.launch`` or torchrun), AMP
(``--use_amp``), gradient accumulation (``--accum_grad``), tensorboard and the
n best checkpoints.  Components are chosen by name:

- ``frontend: wav_cnn`` (+ ``frontend_conf``)
- ``encoder: transformer`` (+ ``encoder_conf``, which may name a ``preset``)
- ``head: multitask | layer_to_layer`` (+ ``head_conf``)
- ``teacher: fairseq | huggingface | torchaudio | espnet`` (+ ``teacher_conf: {path: ...}``)
- ``model_conf``: loss weights, temperature, crops, pruning (``prune_conf``; see :class:`DistillModel`).
- ``teacher_targets: <dump root>``: train on the teacher's stored targets
  (``python -m espnet_distill.bin.dump_teacher_targets``) instead of running it:
  ``<dump root>/<data dir name>`` for the training and the validation data each.
"""

import argparse
import inspect
import logging
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch
import yaml
from espnet2.tasks.abs_task import optim_classes
from espnet2.train.class_choices import ClassChoices
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

from espnet_distill import components
from espnet_distill.asr.build import student_structure
from espnet_distill.data.collate import PadCollate
from espnet_distill.distill import targets
from espnet_distill.distill.export import load_student_weights
from espnet_distill.distill.model import DistillModel
from espnet_distill.files.teacher_spec import read_spec
from espnet_distill.frontend.conv import teacher_frontend_defaults
from espnet_distill.student.heads import AbsPredictionHeads, LayerToLayerHeads, MultiTaskHeads
from espnet_distill.student.presets import TeacherShape, preset_encoder_conf, resolve_encoder_conf
from espnet_distill.tasks.abs_task import SafeTask
from espnet_distill.teacher import LOADERS, load_teacher

logger = logging.getLogger(__name__)

frontend_choices = components.frontend_choices()
encoder_choices = components.encoder_choices()
head_choices = ClassChoices(
    name="head",
    classes=dict(multitask=MultiTaskHeads, layer_to_layer=LayerToLayerHeads),
    type_check=AbsPredictionHeads,
    default="multitask",
)
INIT_FROM_TEACHER = ("frontend", "encoder")


def frontend_conf_for(args: argparse.Namespace, teacher) -> dict:
    """``frontend_conf`` with the teacher's CNN defaults (wav_cnn) or the CMVN statistics (fbank)."""
    frontend_conf = dict(args.frontend_conf)
    if args.frontend == "wav_cnn":
        frontend_conf = {**teacher_frontend_defaults(teacher), **frontend_conf}
    if args.frontend == "fbank" and frontend_conf.get("stats_file") is None:
        if args.fbank_stats is None:
            raise ValueError(
                "the fbank front-end needs global CMVN statistics: give --fbank_stats "
                "data/<train_set>/feats_stats.npz (written by the Fbank stage) or frontend_conf.stats_file"
            )
        frontend_conf["stats_file"] = args.fbank_stats
    return frontend_conf


def count_parameters(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def resolve_prune_target(model_conf: dict, frontend: str, frontend_conf: dict, shape: TeacherShape) -> dict:
    """``prune_conf.target_preset: <preset>`` made into ``target_params``: the size of that preset's student
    (with this front-end) for this teacher, e.g. a pruned student as large as the deep-thin one."""
    prune = dict(model_conf.get("prune_conf") or {})
    preset = prune.pop("target_preset", None)
    if preset is None:
        return model_conf
    conf = preset_encoder_conf(preset, shape)
    student_frontend = frontend_choices.get_class(frontend)(**{**frontend_conf, "output_dim": conf["output_size"]})
    student_encoder = encoder_choices.get_class("transformer")(input_size=student_frontend.output_size(), **conf)
    prune["target_params"] = count_parameters(student_frontend, student_encoder)
    logger.info("prune_conf: the target is the size of the %s student, %d parameters", preset, prune["target_params"])
    return {**model_conf, "prune_conf": prune}


class DistillTask(SafeTask):
    """Distill a frozen HuBERT-class teacher into a student front-end and encoder."""

    num_optimizers: int = 1
    class_choices_list = [frontend_choices, encoder_choices, head_choices]

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="Distillation related")
        required = parser.get_default("required")
        required += ["teacher"]
        group.add_argument(
            "--teacher", type=str, default=None, choices=sorted(LOADERS), help="the teacher's checkpoint format"
        )
        group.add_argument(
            "--teacher_conf",
            action=NestedDictAction,
            default=dict(),
            help="arguments of the teacher loader, e.g. path=exp/hubert_pretrain/teacher.pt",
        )
        group.add_argument(
            "--init_from_teacher",
            type=str,
            nargs="*",
            default=[],
            choices=list(INIT_FROM_TEACHER),
            help="student parts copied from the teacher before training (frontend, encoder)",
        )
        group.add_argument(
            "--init_student",
            type=str_or_none,
            default=None,
            help="start from this student dir (student.yaml, student.pth): its structure and weights, e.g. a "
            "pruned student distilled again without gates",
        )
        group.add_argument(
            "--teacher_targets",
            type=str_or_none,
            default=None,
            help="the root of the teacher's stored targets (dump_teacher_targets): <root>/<data dir name> for "
            "the training and validation data; the teacher then does not run while training",
        )
        group.add_argument(
            "--fbank_stats",
            type=str_or_none,
            default=None,
            help="global CMVN statistics (feats_stats.npz of the Fbank stage) for an fbank front-end "
            "whose frontend_conf names no stats_file",
        )
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=get_default_kwargs(DistillModel),
            help="loss weights, temperature and crops of the distillation model",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        parser.set_defaults(num_att_plot=0)  # no attention maps to plot

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """ESPnet's optimizer; with pruning, the gates and the Lagrangian multipliers in a group of their own
        learning rate (``prune_conf.reg_lr``) without weight decay."""
        pruning = getattr(model, "pruning", None)
        if pruning is None:
            return super().build_optimizers(args, model)
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"must be one of {list(optim_classes)}: {args.optim}")
        reg = {id(p) for p in pruning.reg_parameters()}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in reg]},
            {"params": pruning.reg_parameters(), "lr": pruning.reg_lr, "weight_decay": 0.0},
        ]
        return [optim_class(groups, **args.optim_conf)]

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        if getattr(args, "teacher_targets", None):
            names = stored_target_names(args)
            for entries in (args.train_data_path_and_name_and_type, args.valid_data_path_and_name_and_type):
                dump_dir, _ = targets.add_data_entries(entries, args.teacher_targets, names)
                logger.info("stored teacher targets: %s", dump_dir)
        super().main_worker(args)

    @classmethod
    def build_model_from_file(cls, config_file=None, model_file=None, device: str = "cpu"):
        """A trained model without its training's stored targets (they may be gone): the teacher runs."""
        with targets.no_stored_targets():
            return super().build_model_from_file(config_file, model_file, device)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return PadCollate(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return targets.NAMES  # stored teacher targets (teacher_targets)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> DistillModel:
        teacher = load_teacher(args.teacher, **args.teacher_conf)
        shape = TeacherShape.of(teacher.model)
        logger.info("teacher: %s %s, %s", args.teacher, args.teacher_conf.get("path"), shape)

        if args.init_student is not None:
            if args.init_from_teacher:
                raise ValueError("--init_student and --init_from_teacher both initialise the student: give one")
            student_structure(args)  # the student dir's structure (a pruned student's layer sizes), YAML keys win
        encoder_conf = (
            resolve_encoder_conf(args.encoder_conf, shape)
            if components.canonical_encoder(args.encoder) == "student_transformer"
            else dict(args.encoder_conf)
        )
        frontend_conf = frontend_conf_for(args, teacher)
        encoder_class = encoder_choices.get_class(args.encoder)
        width = encoder_conf.get("output_size", inspect.signature(encoder_class).parameters["output_size"].default)
        frontend_conf.setdefault("output_dim", width)  # the front-end projects to the encoder's width
        frontend = frontend_choices.get_class(args.frontend)(**frontend_conf)
        encoder = encoder_class(input_size=frontend.output_size(), **encoder_conf)
        heads = head_choices.get_class(args.head)(
            student_dim=encoder.output_size(),
            teacher_dim=teacher.hidden_size,
            num_student_layers=encoder.num_layers,
            num_teacher_layers=teacher.num_layers,
            **args.head_conf,
        )
        model_conf = resolve_prune_target(dict(args.model_conf), args.frontend, frontend_conf, shape)
        copies_frontend = "frontend" in args.init_from_teacher and hasattr(frontend, "init_from_teacher")
        if copies_frontend:
            frontend.init_from_teacher(teacher.model)
            if model_conf.get("frontend_steps"):
                logger.info("the front-end is copied from the teacher: frontend_steps set to 0 (no stage A)")
                model_conf["frontend_steps"] = 0
        elif "frontend" in args.init_from_teacher:
            logger.info(
                "a %s front-end cannot be copied from the teacher; it is distilled (model_conf.frontend_steps)",
                args.frontend,
            )
        if "encoder" in args.init_from_teacher:
            encoder.init_from_teacher(teacher.model)
        if args.init_student is not None:
            load_student_weights(Path(args.init_student), frontend, encoder)
            logger.info("front-end and encoder initialised from %s", args.init_student)
            args.init_student = None  # config.yaml records the whole structure, not a pointer to the student
        # config.yaml records the resolved structure (presets and teacher defaults expanded)
        args.frontend_conf = frontend_conf
        args.encoder_conf = encoder_conf
        args.model_conf = model_conf
        if model_conf.get("frontend_steps"):
            args.unused_parameters = True  # stage A: the encoder and heads get no gradients under DDP
        model = DistillModel(frontend, encoder, heads, teacher, **model_conf)
        if getattr(args, "teacher_targets", None) and not targets.stored_targets_off():
            attach_stored_targets(model, args)
        return model


def _speech_path(entries) -> Optional[str]:
    return next((path for path, name, _ in entries or [] if name == "speech"), None)


def stored_target_names(args: argparse.Namespace) -> List[str]:
    """The names stored in the dump of the training data."""
    speech = _speech_path(args.train_data_path_and_name_and_type)
    if speech is None:
        raise targets.TargetsError("teacher_targets: the training data has no speech entry")
    return targets.read_manifest(targets.dump_dir_for(args.teacher_targets, speech))["names"]


def attach_stored_targets(model: DistillModel, args: argparse.Namespace) -> None:
    """Check that the dumps of the training and validation data are of this teacher and hold what this
    student needs, and make the model read them instead of running the teacher."""
    spec = geometry = None
    sets = [
        _speech_path(getattr(args, name, None))
        for name in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type")
    ]
    for speech in filter(None, sets):
        dump_dir = targets.dump_dir_for(args.teacher_targets, speech)
        manifest = targets.read_manifest(dump_dir)
        targets.check_teacher(manifest, dump_dir, model.teacher)
        targets.check_spec_covers(manifest, dump_dir, model)
        if spec is not None and targets.spec_of_manifest(manifest) != spec:
            raise targets.TargetsError(f"{dump_dir}: other targets than those of the training data; dump both alike")
        spec, geometry = targets.spec_of_manifest(manifest), manifest["geometry"]
    if spec is None:
        raise targets.TargetsError("teacher_targets: no data to match the stored targets to")
    model.use_stored_targets(spec, geometry)
    logger.info("training on stored teacher targets (%s): the teacher does not run", args.teacher_targets)


def split_config(entry: str) -> Tuple[str, Optional[str]]:
    """``<config>[:<front-end>]``: the config and the front-end that overrides its own (or None)."""
    config, sep, frontend = entry.rpartition(":")
    if sep and frontend in ("wav_cnn", "fbank"):
        return config, frontend
    return entry, None


def build_student_models(
    entries: List[str],
    teacher_yaml: Optional[Path] = None,
    teacher: Optional[str] = None,
    teacher_conf: Optional[str] = None,
    fbank_stats: Optional[Path] = None,
) -> List[Tuple[DistillModel, argparse.Namespace]]:
    """The distillation model (student and teacher, as ``distill_train`` builds it) and its arguments for each
    ``<config>[:<front-end>]``; the teacher from ``teacher_yaml`` (the teacher stage's), else ``teacher`` and
    ``teacher_conf`` (YAML).  A student that starts from another (``init_student``) is built like its start,
    which need not exist yet; stored targets are not read."""
    if teacher_yaml is not None:
        spec = read_spec(teacher_yaml)  # a ConfigError names the file and the key
        teacher, teacher_conf = spec["teacher"], yaml.safe_dump(spec["teacher_conf"], default_flow_style=True)
    teacher_args = ["--teacher", str(teacher), "--teacher_conf", (teacher_conf or "{}").strip()]
    extra = ["--fbank_stats", str(fbank_stats)] if fbank_stats is not None else []
    models = []
    for entry in entries:
        config, frontend = split_config(entry)
        argv = ["--config", config, *teacher_args, *extra, "--init_student", "none", "--output_dir", "unused"]
        task_args = DistillTask.get_parser().parse_args(argv + (["--frontend", frontend] if frontend else []))
        with targets.no_stored_targets():
            models.append((DistillTask.build_model(task_args), task_args))
    return models
