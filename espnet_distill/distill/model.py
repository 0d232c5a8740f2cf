"""The ESPnet model of the distillation task.

The frozen teacher runs on the fly on the same (cropped) waveforms as the
student.  It is held outside the module tree: it is not in ``state_dict()``
(checkpoints hold the student only), not seen by the optimizer or DDP, and is
moved with the model by ``.to()``.  With stored targets
(:mod:`~espnet_distill.distill.targets`, ``teacher_targets:`` in the task) the
teacher does not run: the batch brings its outputs, and it stays on the CPU.
"""

import hashlib
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_distill import seams
from espnet_distill.distill.codewords import build_codeword_head, load_codebook, teacher_logits_from_codebook
from espnet_distill.distill.targets import StoredBatch, TargetSpec, conv_frames, stored_batch
from espnet_distill.losses import codeword_kl, codeword_kl_topk, regression_terms
from espnet_distill.prune.distill import Pruning
from espnet_distill.student.heads import AbsPredictionHeads
from espnet_distill.teacher.hubert import HubertTeacher, TeacherOutput
from espnet_distill.utils.masks import padding_mask


def crop_batch(
    speech: torch.Tensor,
    lengths: torch.Tensor,
    max_samples: Optional[int],
    to_shortest: bool,
    generator: Optional[torch.Generator] = None,
    stride: int = 1,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Random crops: every utterance to the batch's shortest (``to_shortest``), at most ``max_samples``.

    With ``to_shortest`` the batch has no padding left, as in fairseq's and
    DistilHuBERT's pretraining batches.  Crops start at multiples of ``stride``
    samples (the teacher's frame stride, for stored targets).  Returns the crops,
    their lengths, and their first samples (None when nothing was cropped).
    """
    target = lengths.clone()
    if to_shortest:
        target[:] = int(lengths.min())
    if max_samples:
        target = target.clamp(max=max_samples)
    if bool((target == lengths).all()):
        return speech, lengths, None
    width = int(target.max())
    out = speech.new_zeros(speech.shape[0], width)
    starts = torch.zeros_like(lengths)
    for i, (length, keep) in enumerate(zip(lengths.tolist(), target.tolist())):
        start = 0
        if length > keep:
            start = stride * int(torch.randint(0, (length - keep) // stride + 1, (1,), generator=generator))
        out[i, :keep] = speech[i, start : start + keep]
        starts[i] = start
    return out, target, starts


class DistillModel(AbsESPnetModel):
    """Student front-end + encoder + prediction heads, trained against a frozen teacher.

    Args:
        frontend: the student front-end (``frontend: wav_cnn`` ...).
        encoder: the student encoder; it must provide ``hidden_states()``.
        heads: prediction heads (``head: multitask`` or ``layer_to_layer``).
        teacher: the frozen teacher.
        regression_weight: weight of the summed regression terms.
        cosine_weight: ``w_cos`` inside each regression term.
        discriminative_weight: weight of the codeword KL; 0 disables it.
        temperature: ``tau`` of the KL.
        codeword_logits: ``cosine`` (student projection + cosine to the teacher's
            codewords) or ``linear``.
        codebook: npz of k-means codewords of one teacher layer, for teachers
            without a codeword head (``python -m espnet_distill.bin.teacher_codebook``).
        normalize_targets: layer-normalize (without scale and bias) each teacher
            target frame before the regression loss.  Useful for pre-LN teachers,
            whose hidden states are unnormalized residual sums that grow with depth;
            post-LN teachers such as HuBERT Base emit normalized layers already.
        crop_samples: training crops are at most this long (None: no limit).
        crop_to_shortest: in training, crop every utterance of a batch to its shortest.
        frontend_steps: front-end distillation in two stages.  Stage A, the
            first ``frontend_steps`` training batches: only the front-end trains,
            to regress (L1) the teacher's projected CNN features, the input of its
            first Transformer layer (through a linear map when the widths differ).
            Stage B, the rest: the full distillation, from stage A's front-end.
            For a front-end that cannot be copied from the teacher (``fbank``);
            0: stage B only.  Validation always computes stage B's loss.
        prune_conf: structured pruning while distilling (DPHuBERT; the arguments of
            :class:`~espnet_distill.prune.distill.Pruning`): gates on the encoder's heads and
            feed-forward units and a size term in the loss; the export prunes the student physically.
    """

    def __init__(
        self,
        frontend: AbsFrontend,
        encoder: AbsEncoder,
        heads: AbsPredictionHeads,
        teacher: HubertTeacher,
        regression_weight: float = 1.0,
        cosine_weight: float = 1.0,
        discriminative_weight: float = 0.0,
        temperature: float = 1.0,
        codeword_logits: str = "cosine",
        codebook: Optional[str] = None,
        normalize_targets: bool = False,
        crop_samples: Optional[int] = 250000,
        crop_to_shortest: bool = True,
        frontend_steps: int = 0,
        prune_conf: Optional[Dict] = None,
    ) -> None:
        super().__init__()
        self.frontend = frontend
        self.encoder = encoder
        self.heads = heads
        object.__setattr__(self, "teacher", teacher)  # not a submodule: see the module docstring
        self.regression_weight = regression_weight
        self.cosine_weight = cosine_weight
        self.discriminative_weight = discriminative_weight
        self.temperature = temperature
        self.normalize_targets = normalize_targets
        self.crop_samples = crop_samples
        self.crop_to_shortest = crop_to_shortest
        self.codebook_layer: Optional[int] = None
        self.codeword_head: Optional[torch.nn.Module] = None
        self.frontend_steps = frontend_steps
        self.frontend_head: Optional[torch.nn.Module] = None
        self.pruning: Optional[Pruning] = None
        self.stored: Optional[TargetSpec] = None  # use_stored_targets
        self.stored_geometry: Optional[Dict] = None
        if prune_conf:
            if frontend_steps > 0:
                raise ValueError("model_conf: prune_conf prunes a copy of the teacher; it takes no frontend_steps")
            self.pruning = Pruning(frontend, encoder, **prune_conf)
        if frontend_steps > 0 or self.pruning is not None:
            self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))  # resumes with the checkpoint
        if frontend_steps > 0:
            width = frontend.output_size()
            self.frontend_head = (
                torch.nn.Identity() if width == teacher.hidden_size else torch.nn.Linear(width, teacher.hidden_size)
            )
        if discriminative_weight > 0:
            self._init_codewords(teacher, encoder, codebook, codeword_logits)

    def _init_codewords(
        self, teacher: HubertTeacher, encoder: AbsEncoder, codebook: Optional[str], codeword_logits: str
    ) -> None:
        """The KL's codewords (the teacher's head, or a k-means codebook of one layer) and the student's head."""
        if teacher.has_codewords and codebook is None:
            codewords = teacher.label_embeddings
        elif codebook is not None:
            codewords, self.codebook_layer = load_codebook(codebook)
            if not 0 <= self.codebook_layer <= teacher.num_layers or codewords.shape[1] != teacher.hidden_size:
                raise ValueError(
                    f"codebook {codebook} (layer {self.codebook_layer}, dim {codewords.shape[1]}) does not fit the teacher"
                )
            self.register_buffer("teacher_codebook", codewords.clone())
        else:
            raise ValueError(
                "the teacher has no codeword head (e.g. a Hugging Face model): fit one with "
                "python -m espnet_distill.bin.teacher_codebook and set model_conf.codebook"
            )
        self.codeword_head = build_codeword_head(codeword_logits, encoder.output_size(), codewords, teacher.logit_temp)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        if self.stored is None:  # with stored targets the teacher stays where it is (not on the GPU)
            seams.torch_module_apply(self.teacher, fn)
        return self

    def use_stored_targets(self, spec: TargetSpec, geometry: Dict) -> None:
        """Train on stored targets of ``spec`` (the batches bring them) instead of running the teacher.
        ``geometry``: the teacher's CNN (:func:`~espnet_distill.distill.targets.frame_geometry`)."""
        self.stored = spec
        self.stored_geometry = geometry

    def codeword_source(self) -> str:
        """What the KL's teacher distribution comes from: the teacher's head, or a codebook (by content)."""
        if self.codebook_layer is None:
            return "head"
        digest = hashlib.sha256(self.teacher_codebook.detach().cpu().float().numpy().tobytes()).hexdigest()
        return f"codebook {digest[:16]} layer {self.codebook_layer}"

    def num_codewords(self) -> int:
        if self.codebook_layer is not None:
            return int(self.teacher_codebook.shape[0])
        return int(self.teacher.label_embeddings.shape[0])

    def teacher_codeword_logits(self, output: TeacherOutput) -> torch.Tensor:
        if self.codebook_layer is not None:
            return teacher_logits_from_codebook(
                output.hidden_states[self.codebook_layer], self.teacher_codebook, self.teacher.logit_temp
            )
        if output.codeword_logits is None:
            raise RuntimeError("the teacher returned no codeword logits")
        return output.codeword_logits

    def student_states(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Every hidden state of the student, and frame counts."""
        feats, feat_lengths = self.frontend(speech, speech_lengths)
        return self.encoder.hidden_states(feats, feat_lengths)

    def training_inputs(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, batch: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[StoredBatch]]:
        """The batch's stored targets (None: the teacher runs), then in training the crops of both: crops start
        at multiples of the teacher's frame stride when the targets are stored, and take their frames."""
        stored: Optional[StoredBatch] = None
        if self.stored is not None:
            stored = stored_batch(batch, self.stored, self.stored_geometry["conv"], speech_lengths)
        if not self.training:
            return speech, speech_lengths, stored
        stride = self.stored_geometry["stride"] if stored is not None else 1
        speech, speech_lengths, starts = crop_batch(
            speech, speech_lengths, self.crop_samples, self.crop_to_shortest, stride=stride
        )
        if stored is not None and starts is not None:
            frames = conv_frames(speech_lengths, self.stored_geometry["conv"])
            stored = stored.crop(torch.div(starts, stride, rounding_mode="floor"), frames)
        return speech, speech_lengths, stored

    def discriminative_loss(
        self,
        states: List[torch.Tensor],
        teacher_out: TeacherOutput,
        stored: Optional[StoredBatch],
        num_frames: int,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """The codeword KL: against the teacher's logits (computed or stored), or its stored top k."""
        student_logits = self.codeword_head(self.encoder.final_output(states)[:, :num_frames])
        if stored is not None and stored.index is not None:
            return codeword_kl_topk(
                student_logits,
                stored.logits[:, :num_frames],
                stored.index[:, :num_frames],
                valid,
                self.temperature,
            )
        teacher_logits = stored.logits if stored is not None else self.teacher_codeword_logits(teacher_out)
        return codeword_kl(student_logits, teacher_logits[:, :num_frames], valid, self.temperature)

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """``kwargs``: the stored targets of the batch (``teacher_hidden`` ..., with their lengths) when
        :meth:`use_stored_targets` was called."""
        speech, speech_lengths, stored = self.training_inputs(speech, speech_lengths, kwargs)
        if self.training and (self.frontend_steps > 0 or self.pruning is not None):
            self.num_updates += 1
        if self.training and self.frontend_steps > 0:
            in_stage_a = int(self.num_updates) <= self.frontend_steps
            for module in (self.encoder, self.heads, self.codeword_head):
                if module is not None:
                    module.requires_grad_(not in_stage_a)
            if in_stage_a:
                return self.frontend_forward(speech, speech_lengths, stored)
        if stored is not None:
            teacher_out = TeacherOutput(stored.hidden_states(), stored.lengths, stored.logits)
        else:
            teacher_out = self.teacher(speech, speech_lengths)
        states, lengths = self.student_states(speech, speech_lengths)
        num_frames = min(
            states[0].shape[1],
            int(teacher_out.lengths.max()) if stored is not None else teacher_out.hidden_states[0].shape[1],
        )
        lengths = torch.minimum(lengths, teacher_out.lengths).clamp(max=num_frames)
        valid = ~padding_mask(lengths, num_frames)

        stats: Dict[str, torch.Tensor] = {}
        regression = states[0].new_zeros((), dtype=torch.float32)
        for layer, prediction in self.heads(states):
            target = teacher_out.hidden_states[layer][:, :num_frames]
            if self.normalize_targets:
                target = F.layer_norm(target.float(), target.shape[-1:])
            l1, cos = regression_terms(prediction[:, :num_frames], target, valid)
            stats[f"l1_layer{layer}"] = l1.detach()
            stats[f"cos_layer{layer}"] = cos.detach()
            regression = regression + l1 + self.cosine_weight * cos
        loss = self.regression_weight * regression
        stats["regression"] = regression.detach()
        if self.codeword_head is not None:
            kl = self.discriminative_loss(states, teacher_out, stored, num_frames, valid)
            stats["discriminative"] = kl.detach()
            loss = loss + self.discriminative_weight * kl
        if self.pruning is not None:
            penalty, prune_stats = self.pruning.penalty(int(self.num_updates))
            stats.update(prune_stats)
            if self.training:
                loss = loss + penalty
        stats["loss"] = loss.detach()
        weight = valid.sum()
        loss, stats, weight = force_gatherable((loss, stats, weight), loss.device)
        return loss, stats, weight

    def frontend_forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, stored: Optional[StoredBatch] = None
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Stage A of front-end distillation: L1 to the teacher's projected CNN features."""
        if stored is not None:
            target, target_lengths = stored.projected, stored.lengths
        else:
            target, target_lengths = self.teacher.projected_features(speech, speech_lengths)
        feats, lengths = self.frontend(speech, speech_lengths)
        num_frames = min(feats.shape[1], target.shape[1])
        lengths = torch.minimum(lengths, target_lengths).clamp(max=num_frames)
        valid = ~padding_mask(lengths, num_frames)
        prediction = self.frontend_head(feats[:, :num_frames])
        l1, _ = regression_terms(prediction, target[:, :num_frames], valid)
        stats = {"l1_frontend": l1.detach(), "loss": l1.detach()}
        loss, stats, weight = force_gatherable((l1, stats, valid.sum()), l1.device)
        return loss, stats, weight

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}
