"""The base of both tasks: ESPnet's ``AbsTask`` with no checkpoint loaded unsafely.

Training (``main_worker``: resume, ``--init_param``, n-best averaging) runs
with ESPnet's own loads routed through the safe loader and its saves atomic
(:func:`espnet_distill.utils.checkpoint.espnet_loads_safe`, :func:`espnet_distill.utils.checkpoint.espnet_saves_atomic`), and
:meth:`SafeTask.build_model_from_file` (ESPnet's generic loader of a trained
model) builds the model from its ``config.yaml`` and loads the weights
strictly, naming the file and the key on any mismatch.
"""

import argparse
import logging
from pathlib import Path
from typing import Optional, Tuple, Union

from espnet2.tasks.abs_task import AbsTask
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_distill.data.kaldi_dir import check_no_segments
from espnet_distill.tasks.trainer import SafeTrainer
from espnet_distill.utils.checkpoint import (
    espnet_loads_safe,
    espnet_saves_atomic,
    load_state_into,
    read_training_config,
    trained_state,
    training_config_path,
)

logger = logging.getLogger(__name__)


class SafeTask(AbsTask):
    """``AbsTask`` whose training and model loading never unpickle code."""

    trainer = SafeTrainer

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        # ESPnet's "sound" reader reads whole files: a data dir cut by a segments file would train on
        # whole recordings, so it is refused by name (data.kaldi_dir.check_no_segments).
        for path, _, kind in [
            *(getattr(args, "train_data_path_and_name_and_type", None) or []),
            *(getattr(args, "valid_data_path_and_name_and_type", None) or []),
        ]:
            if kind == "sound":
                check_no_segments(path)
        with espnet_loads_safe(), espnet_saves_atomic():
            super().main_worker(args)

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[AbsESPnetModel, argparse.Namespace]:
        """The model of ``config_file`` (default: ``config.yaml`` beside ``model_file``) with ``model_file``'s weights."""
        config_file = training_config_path(config_file, model_file)
        args = argparse.Namespace(**read_training_config(config_file))
        model = cls.build_model(args)
        if model_file is not None:
            load_state_into(model, trained_state(model_file), model_file)
            logger.info("loaded %s into the model of %s", model_file, config_file)
        return model.to(device), args
