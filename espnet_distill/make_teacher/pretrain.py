"""Masked-prediction pretraining of a small HuBERT (iteration 1) on CPU or GPU.

Not ESPnet's ``hubert`` task (``espnet2/tasks/hubert.py``, espnet 202511): its default encoder and model
(``hubert_pretrain``, ``fairseq``) import fairseq, which is not installed here.  Its other encoder,
``torchaudio_hubert`` (``TorchAudioHuBERTPretrainEncoder``), wraps the same torchaudio
``hubert_pretrain_model``, but the task needs the labels as its ``text`` data with a ``token_list``, runs
torchaudio's forward (not :func:`hubert_logits`'s cheaper logits), and its trainer writes bare state dicts
(``<n>epoch.pth``, ``encoder.hubert_pretrain_model.*``) whose builder arguments are in ``config.yaml``: the
``espnet`` loader can run those frozen, but the released teacher and the ``torchaudio`` loader use the
``{"config", "model"}`` layout of torchaudio's builders, which this loop writes directly.

The model is torchaudio's ``hubert_pretrain_model``; the targets are the
k-means labels of :mod:`espnet_distill.make_teacher.kmeans_labels`.  Training
resumes from ``<out_dir>/checkpoint.pt`` after a crash, and the result is
written in the ``torchaudio`` teacher format (``{"config", "model"}``), so the
distillation stages load it like any real HuBERT checkpoint.
"""

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.models import hubert_pretrain_model
from torchaudio.models.wav2vec2 import components as torchaudio_components

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import DataDirError, read_kaldi_map, read_wav_scp
from espnet_distill.seams import wav2vec2_encoder_preprocess, wav2vec2_padding_mask
from espnet_distill.utils.checkpoint import CheckpointError, load_checkpoint, load_state_into, require_entry
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.progress import ProgressFile

logger = logging.getLogger(__name__)

SAMPLES_PER_FRAME = 320
RECEPTIVE_FIELD = 400


@dataclass
class PretrainConfig:
    """Model size and training schedule (the keys of ``conf/hubert_pretrain.yaml``)."""

    conv_channels: int = 128
    encoder_layers: int = 4
    encoder_dim: int = 256
    encoder_heads: int = 4
    encoder_ffn: int = 1024
    pos_conv_kernel: int = 64
    pos_conv_groups: int = 8
    final_dim: int = 128
    mask_prob: float = 0.65
    mask_length: int = 5
    dropout: float = 0.1
    layer_norm_first: bool = True  # pre-LN (as HuBERT Large): stable with short warm-up
    feature_grad_mult: float = 1.0  # HuBERT Base: 0.1 (slows the CNN down on long runs)
    max_steps: int = 2000
    batch_seconds: float = 60.0
    crop_seconds: float = 4.0
    lr: float = 1e-3
    warmup_steps: int = 200
    grad_clip: float = 5.0
    feature_penalty: float = 10.0
    unmasked_weight: float = 0.0  # weight of the loss on unmasked frames (HuBERT: 0)
    valid_interval: int = 250
    seed: int = 1
    bf16: bool = (
        False  # bfloat16 autocast in training steps (weights and optimizer stay float32; 1.4x on AVX-512 BF16 CPUs)
    )

    def model_kwargs(self, num_classes: int) -> Dict:
        """Arguments of torchaudio's ``hubert_pretrain_model``."""
        convs = [(self.conv_channels, 10, 5)] + [(self.conv_channels, 3, 2)] * 4 + [(self.conv_channels, 2, 2)] * 2
        return dict(
            extractor_mode="group_norm",
            extractor_conv_layer_config=convs,
            extractor_conv_bias=False,
            encoder_embed_dim=self.encoder_dim,
            encoder_projection_dropout=self.dropout,
            encoder_pos_conv_kernel=self.pos_conv_kernel,
            encoder_pos_conv_groups=self.pos_conv_groups,
            encoder_num_layers=self.encoder_layers,
            encoder_num_heads=self.encoder_heads,
            encoder_attention_dropout=self.dropout,
            encoder_ff_interm_features=self.encoder_ffn,
            encoder_ff_interm_dropout=0.0,
            encoder_dropout=self.dropout,
            encoder_layer_norm_first=self.layer_norm_first,
            encoder_layer_drop=0.05,
            mask_prob=self.mask_prob,
            mask_selection="static",
            mask_other=0.0,
            mask_length=self.mask_length,
            no_mask_overlap=False,
            mask_min_space=1,
            mask_channel_prob=0.0,
            mask_channel_selection="static",
            mask_channel_other=0.0,
            mask_channel_length=10,
            no_mask_channel_overlap=False,
            mask_channel_min_space=1,
            skip_masked=False,
            skip_nomask=self.unmasked_weight == 0.0,
            num_classes=num_classes,
            final_dim=self.final_dim,
            feature_grad_mult=None if self.feature_grad_mult >= 1.0 else self.feature_grad_mult,
        )


def num_model_frames(num_samples: int) -> int:
    return max(0, 1 + (num_samples - RECEPTIVE_FIELD) // SAMPLES_PER_FRAME)


class LabelledAudio:
    """Waveforms of a data dir with their frame labels, checked to agree in length."""

    def __init__(self, data_dir: Path, labels_file: Path) -> None:
        wav_scp = read_wav_scp(data_dir / "wav.scp")
        labels = read_kaldi_map(labels_file)
        self.items: List[Tuple[str, np.ndarray, np.ndarray]] = []
        for utt, spec in wav_scp.items():
            if utt not in labels:
                raise DataDirError(f"{labels_file}: no labels for utterance {utt!r}")
            samples, _ = read_audio(utt, spec)
            label = np.array(labels[utt].split(), dtype=np.int64)
            if len(label) != num_model_frames(len(samples)):
                raise DataDirError(
                    f"{labels_file}: utterance {utt!r} has {len(label)} labels for "
                    f"{num_model_frames(len(samples))} frames"
                )
            self.items.append((utt, samples, label))

    def batches(self, batch_seconds: float, crop_seconds: float, rng: random.Random) -> List[List[int]]:
        """Indices grouped by length into batches of at most ``batch_seconds`` (cropped)."""
        order = sorted(range(len(self.items)), key=lambda i: len(self.items[i][1]))
        batches, current, total = [], [], 0.0
        for index in order:
            seconds = min(len(self.items[index][1]) / 16000.0, crop_seconds)
            if current and (len(current) + 1) * max(seconds, total) > batch_seconds:
                batches.append(current)
                current, total = [], 0.0
            current.append(index)
            total = max(total, seconds)
        if current:
            batches.append(current)
        rng.shuffle(batches)
        return batches

    def collate(self, indices: List[int], crop_seconds: float, rng: random.Random):
        """Padded waveforms, lengths and labels; long utterances are cropped at frame boundaries."""
        max_frames = num_model_frames(int(crop_seconds * 16000))
        waves, labels = [], []
        for index in indices:
            _, samples, label = self.items[index]
            if len(label) > max_frames:
                start = rng.randrange(len(label) - max_frames + 1)
                label = label[start : start + max_frames]
                offset = start * SAMPLES_PER_FRAME
                samples = samples[offset : offset + RECEPTIVE_FIELD + (max_frames - 1) * SAMPLES_PER_FRAME]
            waves.append(torch.as_tensor(samples, dtype=torch.float32))
            labels.append(torch.as_tensor(label))
        lengths = torch.tensor([len(w) for w in waves])
        wave_batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        label_batch = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True)
        return wave_batch, lengths, label_batch


LOGIT_TEMPERATURE = 0.1  # torchaudio's (and HuBERT's) temperature of the codeword logits


def hubert_logits(model, waves: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
    """The forward pass of torchaudio's ``HuBERTPretrainModel``, with the codeword logits as one matmul.

    Returns ``(logits_m, labels_m, logits_u, labels_u, penalty)``: the logits over every
    codeword ``(frames, classes)`` of the masked and of the unmasked frames, their
    labels, and the feature penalty.  torchaudio's own logit generator builds a
    ``(classes + 1, frames, final_dim)`` tensor per batch for its cosine
    similarities (a third of a CPU step with 100 classes); a cross entropy over
    these logits is the same loss as over torchaudio's ``[positive, negatives]``
    logits, since the negatives are every other codeword.  Random masks and
    dropout are drawn in the same order as torchaudio's forward.
    """
    x, out_lengths = model.wav2vec2.feature_extractor(waves, lengths)
    if model.feature_grad_mult is not None and model.feature_grad_mult < 1.0:
        x = torchaudio_components.GradMultiply.apply(x, model.feature_grad_mult)
    penalty = x.float().pow(2).mean()
    padding_mask = wav2vec2_padding_mask(x, out_lengths)
    x, attention_mask = wav2vec2_encoder_preprocess(model.wav2vec2.encoder, x, out_lengths)
    x, mask = model.mask_generator(x, padding_mask)
    x = model.wav2vec2.encoder.transformer(x, attention_mask=attention_mask)
    if x.shape[1] != labels.shape[1]:
        raise ValueError(f"{labels.shape[1]} label frames for {x.shape[1]} model frames")
    mask_m = mask & ~padding_mask
    mask_u = ~mask & ~padding_mask
    generator = model.logit_generator
    proj = F.normalize(generator.final_proj(x).float(), dim=-1, eps=1e-8)
    codewords = F.normalize(generator.label_embeddings.float(), dim=-1, eps=1e-8)
    logits = proj @ codewords.t() / LOGIT_TEMPERATURE
    return logits[mask_m], labels[mask_m], logits[mask_u], labels[mask_u], penalty


def masked_prediction_step(model, waves, lengths, labels, feature_penalty: float, unmasked_weight: float = 0.0):
    """Loss, correct masked frames, masked frames of one batch."""
    logits_m, labels_m, logits_u, labels_u, penalty = hubert_logits(model, waves, lengths, labels)
    loss = F.cross_entropy(logits_m, labels_m) + feature_penalty * penalty
    if unmasked_weight > 0.0 and logits_u.shape[0] > 0:
        loss = loss + unmasked_weight * F.cross_entropy(logits_u, labels_u)
    correct = int((logits_m.argmax(dim=-1) == labels_m).sum())
    return loss, correct, logits_m.shape[0]


def evaluate(model, data: LabelledAudio, config: PretrainConfig) -> Dict[str, float]:
    """Masked-prediction loss and accuracy on ``data`` (fixed masks, no dropout)."""
    model.eval()
    rng = random.Random(0)
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in data.batches(config.batch_seconds, 1e9, rng):
            waves, lengths, labels = data.collate(batch, 1e9, rng)
            loss, ok, n = masked_prediction_step(model, waves, lengths, labels, 0.0)
            total_loss += float(loss) * n
            correct += ok
            count += n
    torch.random.set_rng_state(state)
    model.train()
    return {"loss": total_loss / count, "accuracy": correct / count}


def _lr_lambda(config: PretrainConfig):
    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return schedule


RESUME_MAY_CHANGE = ("max_steps", "valid_interval", "bf16")


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int, epoch: int, history: List, config) -> None:
    with atomic_write(path, "wb") as f:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "epoch": epoch,
                "history": history,
                "config": asdict(config),
            },
            f,
        )


def _check_resumable(path: Path, saved: Dict, config: "PretrainConfig") -> None:
    """Refuse to resume a run whose configuration was different."""
    current = asdict(config)
    changed = [k for k in current if k not in RESUME_MAY_CHANGE and saved.get(k) != current[k]]
    if changed:
        raise ValueError(
            f"{path} was written with {changed[0]}={saved.get(changed[0])!r}, now {current[changed[0]]!r}; "
            f"remove {path.parent} to start again, or restore the configuration to resume"
        )


def _resume(path: Path, model, optimizer, scheduler, config: PretrainConfig) -> Tuple[int, int, List]:
    """Load ``checkpoint.pt`` into the model, optimizer and scheduler; ``(step, epoch, history)`` (zeros without one)."""
    if not path.is_file():
        return 0, 0, []
    state = load_checkpoint(path)
    _check_resumable(path, require_entry(state, "config", path), config)
    load_state_into(model, require_entry(state, "model", path), path)
    try:
        optimizer.load_state_dict(require_entry(state, "optimizer", path))
        scheduler.load_state_dict(require_entry(state, "scheduler", path))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: the optimizer state does not fit this model: {e}") from e
    step, epoch, history = (require_entry(state, key, path) for key in ("step", "epoch", "history"))
    logger.info("resumed from %s at step %d", path, step)
    return step, epoch, history


def _train_step(model, optimizer, scheduler, waves, lengths, labels, config: PretrainConfig) -> Tuple[Any, int, int]:
    """One optimizer step on a batch; ``(loss, correct, count)`` of its masked frames."""
    with torch.autocast(waves.device.type, dtype=torch.bfloat16, enabled=config.bf16):
        loss, correct, count = masked_prediction_step(
            model, waves, lengths, labels, config.feature_penalty, config.unmasked_weight
        )
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    return loss, correct, count


def _validate(model, valid: LabelledAudio, config: PretrainConfig, step: int, history: List) -> None:
    """Evaluate on ``valid``, append to ``history`` and log it."""
    result = evaluate(model, valid, config)
    history.append({"type": "valid", "step": step, **result})
    logger.info("step %d: valid loss %.3f, masked acc %.3f", step, result["loss"], result["accuracy"])


def _write_teacher(out_dir: Path, kwargs: Dict, model, summary: Dict, config: PretrainConfig) -> Dict:
    """Write ``teacher.pt`` (torchaudio teacher format) and ``results.json``; returns the results."""
    final = [h for h in summary.pop("history") if h.get("type") == "valid"][-1]
    with atomic_write(out_dir / "teacher.pt", "wb") as f:
        torch.save({"config": kwargs, "model": model.state_dict()}, f)
    results = {
        "step": summary["step"],
        "finished": True,
        "params": summary["params"],
        "valid_accuracy": final["accuracy"],
        "valid_loss": final["loss"],
        "wall_seconds_last_call": summary["wall"],
        "train_audio_seconds_per_second": summary["audio_seconds"] / max(summary["wall"], 1e-9),
        "config": asdict(config),
    }
    with atomic_write(out_dir / "results.json") as f:
        json.dump(results, f, indent=2)
    return results


def pretrain(
    train: LabelledAudio,
    valid: LabelledAudio,
    num_classes: int,
    config: PretrainConfig,
    out_dir: Path,
    stop_after: Optional[int] = None,
) -> Dict:
    """Train until ``config.max_steps`` (resuming from ``out_dir/checkpoint.pt``).

    ``stop_after``: leave after that many steps of this call (to test resuming).
    Writes ``teacher.pt`` (torchaudio teacher format) and ``results.json``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    kwargs = config.model_kwargs(num_classes)
    model = hubert_pretrain_model(**kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    checkpoint_path = out_dir / "checkpoint.pt"
    step, epoch, history = _resume(checkpoint_path, model, optimizer, scheduler, config)
    params = sum(p.numel() for p in model.wav2vec2.parameters())
    logger.info("HuBERT teacher: %.2f M parameters (without the codeword head)", params / 1e6)
    if step == 0:
        _validate(model, valid, config, 0, history)
    model.train()
    start_time, steps_this_call, audio_seconds = time.time(), 0, 0.0
    progress = ProgressFile(out_dir)
    while step < config.max_steps:
        rng = random.Random(config.seed * 1000 + epoch)
        batches = train.batches(config.batch_seconds, config.crop_seconds, rng)
        done_in_epoch = step - sum(h.get("epoch_steps", 0) for h in history if h.get("type") == "epoch")
        for batch in batches[done_in_epoch:]:
            waves, lengths, labels = train.collate(batch, config.crop_seconds, rng)
            loss, correct, count = _train_step(model, optimizer, scheduler, waves, lengths, labels, config)
            step, steps_this_call = step + 1, steps_this_call + 1
            audio_seconds += float(lengths.sum()) / 16000.0
            progress.update(step, config.max_steps, loss=loss.item() if step % 25 == 0 else None)
            if step % 25 == 0:
                lr = scheduler.get_last_lr()[0]
                logger.info("step %d: loss %.3f, masked acc %.3f, lr %.2e", step, loss.item(), correct / count, lr)
            if step % config.valid_interval == 0 or step == config.max_steps:
                _validate(model, valid, config, step, history)
                _save_checkpoint(checkpoint_path, model, optimizer, scheduler, step, epoch, history, config)
            if step >= config.max_steps or (stop_after is not None and steps_this_call >= stop_after):
                break
        else:
            history.append({"type": "epoch", "epoch": epoch, "epoch_steps": len(batches)})
            epoch += 1
            continue
        if stop_after is not None and steps_this_call >= stop_after and step < config.max_steps:
            _save_checkpoint(checkpoint_path, model, optimizer, scheduler, step, epoch, history, config)
            return {"step": step, "finished": False}
    wall = time.time() - start_time
    progress.update(step, config.max_steps, done=True)
    summary = dict(history=history, step=step, params=params, wall=wall, audio_seconds=audio_seconds)
    return _write_teacher(out_dir, kwargs, model, summary, config)


def set_threads(num_threads: int) -> None:
    if num_threads > 0:
        torch.set_num_threads(num_threads)
