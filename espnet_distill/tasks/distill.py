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
- ``model_conf``: loss weights, temperature, crops (see :class:`DistillModel`).
"""

import argparse
import inspect
import logging
from typing import Callable, Optional, Tuple

from espnet2.train.class_choices import ClassChoices
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

from espnet_distill import components
from espnet_distill.data.collate import PadCollate
from espnet_distill.distill.model import DistillModel
from espnet_distill.frontend.conv import teacher_frontend_defaults
from espnet_distill.student.heads import AbsPredictionHeads, LayerToLayerHeads, MultiTaskHeads
from espnet_distill.student.presets import TeacherShape, resolve_encoder_conf
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
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> DistillModel:
        teacher = load_teacher(args.teacher, **args.teacher_conf)
        shape = TeacherShape.of(teacher.model)
        logger.info("teacher: %s %s, %s", args.teacher, args.teacher_conf.get("path"), shape)

        encoder_conf = (
            resolve_encoder_conf(args.encoder_conf, shape)
            if components.canonical_encoder(args.encoder) == "student_transformer"
            else dict(args.encoder_conf)
        )
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
        model_conf = dict(args.model_conf)
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
        # config.yaml records the resolved structure (presets and teacher defaults expanded)
        args.frontend_conf = frontend_conf
        args.encoder_conf = encoder_conf
        args.model_conf = model_conf
        if model_conf.get("frontend_steps"):
            args.unused_parameters = True  # stage A: the encoder and heads get no gradients under DDP
        return DistillModel(frontend, encoder, heads, teacher, **model_conf)
