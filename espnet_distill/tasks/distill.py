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
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.class_choices import ClassChoices
from espnet2.train.trainer import Trainer
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

from espnet_distill.data.collate import PadCollate
from espnet_distill.distill.model import DistillModel
from espnet_distill.frontend.conv import extractor_layers, normalizes_over_time
from espnet_distill.student.heads import AbsPredictionHeads, LayerToLayerHeads, MultiTaskHeads
from espnet_distill.student.presets import TeacherShape, resolve_encoder_conf
from espnet_distill.tasks import components
from espnet_distill.teacher import LOADERS, load_teacher
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.teacher.safe_load import load_checkpoint, training_checkpoint_globals

frontend_choices = components.frontend_choices()
encoder_choices = components.encoder_choices()
head_choices = ClassChoices(
    name="head",
    classes=dict(multitask=MultiTaskHeads, layer_to_layer=LayerToLayerHeads),
    type_check=AbsPredictionHeads,
    default="multitask",
)
INIT_FROM_TEACHER = ("frontend", "encoder")
THROUGHPUT_LOG = "throughput.jsonl"
DDP_CHECK = "ddp_check.json"


class _AudioCounter:
    """Wraps a batch iterator and counts the seconds of audio it yields."""

    def __init__(self, iterator, sample_rate: int = 16000) -> None:
        self.iterator = iterator
        self.sample_rate = sample_rate
        self.audio_seconds = 0.0
        self.steps = 0

    def __iter__(self):
        for utt_ids, batch in self.iterator:
            if "speech_lengths" in batch:
                self.audio_seconds += float(batch["speech_lengths"].sum()) / self.sample_rate
            self.steps += 1
            yield utt_ids, batch


def weights_checksum(model: torch.nn.Module) -> List[float]:
    """Per-parameter sums and sums of squares (float64): equal on every rank iff in sync (for practical purposes)."""
    values = []
    for p in model.parameters():
        data = p.detach().double()
        values += [float(data.sum()), float((data * data).sum())]
    return values


class DistillTrainer(Trainer):
    """ESPnet's trainer, resuming without unpickling code, logging training throughput and,
    under DDP, checking at the end that every rank holds the same weights (``ddp_check.json``)."""

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory, plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        super().run(
            model=model, optimizers=optimizers, schedulers=schedulers, train_iter_factory=train_iter_factory,
            valid_iter_factory=valid_iter_factory, plot_attention_iter_factory=plot_attention_iter_factory,
            trainer_options=trainer_options, distributed_option=distributed_option,
        )
        if distributed_option.distributed:
            cls.check_ranks_in_sync(model, Path(trainer_options.output_dir), distributed_option)

    @staticmethod
    def check_ranks_in_sync(model: torch.nn.Module, output_dir: Path, distributed_option) -> None:
        """Gather every rank's weight checksum; rank 0 writes them and fails if they differ."""
        device = next(model.parameters()).device  # NCCL gathers CUDA tensors, gloo CPU ones
        local = torch.tensor(weights_checksum(model), dtype=torch.float64, device=device)
        gathered = [torch.zeros_like(local) for _ in range(distributed_option.dist_world_size)]
        torch.distributed.all_gather(gathered, local)
        gathered = [g.cpu() for g in gathered]
        if distributed_option.dist_rank != 0:
            return
        identical = all(torch.equal(gathered[0], other) for other in gathered[1:])
        with (output_dir / DDP_CHECK).open("w", encoding="utf-8") as f:
            json.dump({"world_size": len(gathered), "identical": identical,
                       "checksums": [[float(v) for v in g[:4]] for g in gathered]}, f, indent=2)  # fmt: skip
        if not identical:
            raise RuntimeError(f"DDP ranks finished with different weights; see {output_dir / DDP_CHECK}")
        logging.info("DDP check: all %d ranks hold identical weights", len(gathered))

    @classmethod
    def resume(cls, checkpoint, model, reporter, optimizers, schedulers, scaler, ngpu: int = 0, strict: bool = True) -> None:
        states = load_checkpoint(checkpoint, extra_globals=training_checkpoint_globals())
        model.load_state_dict(states["model"], strict=strict)
        reporter.load_state_dict(states["reporter"])
        for optimizer, state in zip(optimizers, states["optimizers"]):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(schedulers, states["schedulers"]):
            if scheduler is not None:
                scheduler.load_state_dict(state)
        if scaler is not None and states.get("scaler") is not None:
            scaler.load_state_dict(states["scaler"])
        logging.info("resumed from %s at epoch %d", checkpoint, reporter.get_epoch())

    @classmethod
    def train_one_epoch(cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer, options, distributed_option) -> bool:
        counter = _AudioCounter(iterator)
        start = time.perf_counter()
        result = super().train_one_epoch(
            model=model, iterator=counter, optimizers=optimizers, schedulers=schedulers, scaler=scaler,
            reporter=reporter, summary_writer=summary_writer, options=options, distributed_option=distributed_option,
        )
        seconds = time.perf_counter() - start
        if not distributed_option.distributed or distributed_option.dist_rank == 0:
            record = {
                "epoch": reporter.epoch,
                "steps": counter.steps,
                "audio_seconds": counter.audio_seconds,
                "seconds": seconds,
                "world_size": distributed_option.dist_world_size or 1,
            }
            with (Path(options.output_dir) / THROUGHPUT_LOG).open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            logging.info("epoch %d: %.1f s of audio per second on this rank", reporter.epoch, counter.audio_seconds / max(seconds, 1e-9))
        return result


def teacher_frontend_defaults(teacher: HubertTeacher) -> Dict[str, Any]:
    """The teacher's CNN, as ``frontend_conf`` values of ``wav_cnn``."""
    extractor = teacher.model.feature_extractor
    return {
        "conv_layers": [list(layer) for layer in extractor_layers(extractor)],
        "extractor_mode": "group_norm" if normalizes_over_time(extractor) else "layer_norm",
        "conv_bias": extractor.conv_layers[0].conv.bias is not None,
    }


class DistillTask(AbsTask):
    """Distill a frozen HuBERT-class teacher into a student front-end and encoder."""

    num_optimizers: int = 1
    class_choices_list = [frontend_choices, encoder_choices, head_choices]
    trainer = DistillTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="Distillation related")
        required = parser.get_default("required")
        required += ["teacher"]
        group.add_argument("--teacher", type=str, default=None, choices=sorted(LOADERS), help="the teacher's checkpoint format")
        group.add_argument(
            "--teacher_conf", action=NestedDictAction, default=dict(),
            help="arguments of the teacher loader, e.g. path=exp/hubert_pretrain/teacher.pt",
        )
        group.add_argument(
            "--init_from_teacher", type=str, nargs="*", default=[], choices=list(INIT_FROM_TEACHER),
            help="student parts copied from the teacher before training (frontend, encoder)",
        )
        group.add_argument(
            "--fbank_stats", type=str_or_none, default=None,
            help="global CMVN statistics (feats_stats.npz of the Fbank stage) for an fbank front-end "
            "whose frontend_conf names no stats_file",
        )
        group.add_argument(
            "--model_conf", action=NestedDictAction, default=get_default_kwargs(DistillModel),
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
        logging.info("teacher: %s %s, %s", args.teacher, args.teacher_conf.get("path"), shape)

        encoder_conf = resolve_encoder_conf(args.encoder_conf, shape) if args.encoder == "transformer" else dict(args.encoder_conf)
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
            student_dim=encoder.output_size(), teacher_dim=teacher.hidden_size,
            num_student_layers=encoder.num_layers, num_teacher_layers=teacher.num_layers, **args.head_conf,
        )
        model_conf = dict(args.model_conf)
        copies_frontend = "frontend" in args.init_from_teacher and hasattr(frontend, "init_from_teacher")
        if copies_frontend:
            frontend.init_from_teacher(teacher.model)
            if model_conf.get("frontend_steps"):
                logging.info("the front-end is copied from the teacher: frontend_steps set to 0 (no stage A)")
                model_conf["frontend_steps"] = 0
        elif "frontend" in args.init_from_teacher:
            logging.info("a %s front-end cannot be copied from the teacher; it is distilled (model_conf.frontend_steps)", args.frontend)
        if "encoder" in args.init_from_teacher:
            encoder.init_from_teacher(teacher.model)
        # config.yaml records the resolved structure (presets and teacher defaults expanded)
        args.frontend_conf = frontend_conf
        args.encoder_conf = encoder_conf
        args.model_conf = model_conf
        if model_conf.get("frontend_steps"):
            args.unused_parameters = True  # stage A: the encoder and heads get no gradients under DDP
        return DistillModel(frontend, encoder, heads, teacher, **model_conf)
