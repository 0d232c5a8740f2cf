"""The trainer both tasks use: ESPnet's, with every checkpoint it reads loaded safely.

:class:`SafeTrainer` resumes through the project's safe loader with errors
that name the file and the key, logs training throughput per epoch
(``throughput.jsonl``) and, under DDP, checks at the end that every rank
holds the same weights (``ddp_check.json``).

ESPnet's trainer also loads files in code this class cannot override: the
n-best averaging at the end of training, ``--init_param`` and
``build_model_from_file``.  :func:`espnet_distill.utils.checkpoint.espnet_loads_safe`
routes the ``torch.load`` of exactly those ESPnet modules through the safe
loader while a task runs (:class:`espnet_distill.tasks.abs_task.SafeTask`),
and :func:`espnet_distill.utils.checkpoint.espnet_saves_atomic` makes its saves atomic.
"""

import contextvars
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import torch
from espnet2.train.trainer import Trainer

from espnet_distill.utils.checkpoint import (
    CheckpointError,
    load_state_into,
    load_training_file,
    require_entry,
)
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.progress import ProgressFile

logger = logging.getLogger(__name__)

THROUGHPUT_LOG = "throughput.jsonl"
DDP_CHECK = "ddp_check.json"


@dataclass
class _RunState:
    """What :class:`SafeTrainer` keeps over the epochs of one run."""

    progress: Optional[ProgressFile] = None
    steps_per_epoch: int = 0  # the last epoch's, when the iterator has no length


# ESPnet's trainer is all class methods: the state of the run in progress lives here, not on the class.
_run_state: contextvars.ContextVar[_RunState] = contextvars.ContextVar("espnet_distill_trainer_run")


class _AudioCounter:
    """Wraps a batch iterator and counts the seconds of audio it yields; ``on_step(steps)`` is called
    after each step (when the trainer asks for the next batch)."""

    def __init__(self, iterator, sample_rate: int = 16000, on_step: Optional[Callable[[int], None]] = None) -> None:
        self.iterator = iterator
        self.sample_rate = sample_rate
        self.on_step = on_step
        self.audio_seconds = 0.0
        self.steps = 0

    def __len__(self) -> int:
        # ESPnet's trainer sets its log interval from the epoch's length (every 5%): without it,
        # every 100 steps, which a 50-step epoch never reaches (no loss in train.log).
        return len(self.iterator)

    def __iter__(self):
        for utt_ids, batch in self.iterator:
            if "speech_lengths" in batch:
                self.audio_seconds += float(batch["speech_lengths"].sum()) / self.sample_rate
            self.steps += 1
            yield utt_ids, batch
            if self.on_step is not None:  # the step on this batch is done
                self.on_step(self.steps)


def weights_checksum(model: torch.nn.Module) -> List[float]:
    """Per-parameter sums and sums of squares (float64): equal on every rank iff in sync (for practical purposes)."""
    values = []
    for p in model.parameters():
        data = p.detach().double()
        values += [float(data.sum()), float((data * data).sum())]
    return values


class SafeTrainer(Trainer):
    """ESPnet's trainer, resuming without unpickling code, logging training throughput, writing its
    progress (``progress.json``, see :mod:`espnet_distill.utils.progress`) and, under DDP, checking at
    the end that every rank holds the same weights."""

    @classmethod
    def run(
        cls,
        model,
        optimizers,
        schedulers,
        train_iter_factory,
        valid_iter_factory,
        plot_attention_iter_factory,
        trainer_options,
        distributed_option,
    ) -> None:
        state = _RunState()
        token = _run_state.set(state)
        try:
            super().run(
                model=model,
                optimizers=optimizers,
                schedulers=schedulers,
                train_iter_factory=train_iter_factory,
                valid_iter_factory=valid_iter_factory,
                plot_attention_iter_factory=plot_attention_iter_factory,
                trainer_options=trainer_options,
                distributed_option=distributed_option,
            )
        finally:
            _run_state.reset(token)
        if state.progress is not None and state.progress.progress is not None:
            total = state.progress.progress.total
            state.progress.update(max(total, state.progress.progress.step), total, done=True)
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
            json.dump(
                {
                    "world_size": len(gathered),
                    "identical": identical,
                    "checksums": [[float(v) for v in g[:4]] for g in gathered],
                },
                f,
                indent=2,
            )
        if not identical:
            raise RuntimeError(f"DDP ranks finished with different weights; see {output_dir / DDP_CHECK}")
        logger.info("DDP check: all %d ranks hold identical weights", len(gathered))

    @classmethod
    def resume(
        cls, checkpoint, model, reporter, optimizers, schedulers, scaler, ngpu: int = 0, strict: bool = True
    ) -> None:
        states = load_training_file(checkpoint)
        load_state_into(model, require_entry(states, "model", checkpoint), checkpoint, strict=strict)
        reporter.load_state_dict(require_entry(states, "reporter", checkpoint))
        saved_optimizers = require_entry(states, "optimizers", checkpoint)
        saved_schedulers = require_entry(states, "schedulers", checkpoint)
        if len(saved_optimizers) != len(optimizers) or len(saved_schedulers) != len(schedulers):
            raise CheckpointError(
                f"{checkpoint}: holds {len(saved_optimizers)} optimizers and {len(saved_schedulers)} schedulers, "
                f"the task has {len(optimizers)} and {len(schedulers)}"
            )
        for optimizer, state in zip(optimizers, saved_optimizers):
            try:
                optimizer.load_state_dict(state)
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"{checkpoint}: the optimizer state does not fit this model: {e}") from e
        for scheduler, state in zip(schedulers, saved_schedulers):
            if scheduler is not None:
                scheduler.load_state_dict(state)
        if scaler is not None and states.get("scaler") is not None:
            scaler.load_state_dict(states["scaler"])
        # A run killed after checkpoint.pth but before <N>epoch.pth: the epoch's model is the checkpoint's.
        epoch_file = Path(checkpoint).parent / f"{reporter.get_epoch()}epoch.pth"
        if reporter.get_epoch() > 0 and not epoch_file.exists():
            with atomic_write(epoch_file, mode="wb") as out:
                torch.save(states["model"], out)
            logger.info("wrote the missing %s from %s", epoch_file, checkpoint)
        logger.info("resumed from %s at epoch %d", checkpoint, reporter.get_epoch())

    @classmethod
    def train_one_epoch(
        cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer, options, distributed_option
    ) -> bool:
        counter = _AudioCounter(iterator)
        state = _run_state.get(None) or _RunState()  # outside run(): this epoch's own
        if not distributed_option.distributed or distributed_option.dist_rank == 0:
            output_dir = Path(options.output_dir)
            if state.progress is None or state.progress.path.parent != output_dir:
                state.progress = ProgressFile(output_dir)
            progress = state.progress
            try:
                per_epoch = len(iterator)
            except TypeError:
                per_epoch = state.steps_per_epoch
            done_before = (reporter.epoch - 1) * per_epoch
            total = options.max_epoch * per_epoch
            counter.on_step = lambda steps: progress.update(done_before + steps, total)
        start = time.perf_counter()
        result = super().train_one_epoch(
            model=model,
            iterator=counter,
            optimizers=optimizers,
            schedulers=schedulers,
            scaler=scaler,
            reporter=reporter,
            summary_writer=summary_writer,
            options=options,
            distributed_option=distributed_option,
        )
        seconds = time.perf_counter() - start
        state.steps_per_epoch = counter.steps
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
            logger.info(
                "epoch %d: %.1f s of audio per second on this rank",
                reporter.epoch,
                counter.audio_seconds / max(seconds, 1e-9),
            )
        return result
