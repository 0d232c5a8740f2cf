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

The model itself is built by :mod:`espnet_distill.asr.build`, which every
command that loads a fine-tuned model uses without importing this task
(``ASRTask.build_model_from_file``, ESPnet's way in, goes there too); the task
adds the training side: arguments, data, and the fine-tuning's record of what it
started from (``student_source.json``, :mod:`espnet_distill.files.student_source`).
"""

import argparse
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
from espnet2.asr.ctc import CTC
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none

from espnet_distill.asr.build import build_ctc_model, encoder_choices, frontend_choices, load_ctc_model, specaug_choices
from espnet_distill.asr.model import CTCASRModel
from espnet_distill.data.collate import PadCollate
from espnet_distill.espnet_interop import ESPNET_DEFAULTS
from espnet_distill.files.student_source import write_student_source
from espnet_distill.tasks.abs_task import SafeTask
from espnet_distill.text.tokens import TOKEN_TYPES, Tokenizer, read_token_list
from espnet_distill.utils.checkpoint import read_training_config, training_config_path


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
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[CTCASRModel, argparse.Namespace]:
        """The model of ``config_file`` (default: ``config.yaml`` beside ``model_file``) with ``model_file``'s
        weights, built and checked by :func:`espnet_distill.asr.build.load_ctc_model`."""
        config_file = training_config_path(config_file, model_file)
        return load_ctc_model(read_training_config(config_file), config_file, model_file, device)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> CTCASRModel:
        init_student, init_weights = args.init_student, bool(args.init_student_weights)
        model = build_ctc_model(args)
        if init_student is not None and getattr(args, "output_dir", None):
            write_student_source(Path(args.output_dir), Path(init_student), init_weights)
        return model
