"""A CTC-only ESPnet ASR model whose front-end or encoder can stay frozen for the first steps."""

from typing import Dict, Tuple

import torch
from espnet2.asr.espnet_model import ESPnetASRModel


class CTCASRModel(ESPnetASRModel):
    """ESPnet's ASR model with ``ctc_weight=1`` and no decoder.

    Args:
        freeze_frontend_steps: the front-end gets no updates for this many
            training batches (forward passes; with ``--accum_grad N``, N per step);
            -1: never (HuBERT fine-tuning's frozen CNN), which also saves its backward pass.
        freeze_encoder_steps: the same for the front-end and the encoder together.
        **kwargs: the arguments of ``ESPnetASRModel``.
    """

    def __init__(self, *args, freeze_frontend_steps: int = 0, freeze_encoder_steps: int = 0, **kwargs) -> None:
        kwargs.update(ctc_weight=1.0, decoder=None)
        super().__init__(*args, **kwargs)
        self.freeze_frontend_steps = freeze_frontend_steps
        self.freeze_encoder_steps = freeze_encoder_steps
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _frozen(step: int, steps: int) -> bool:
        return steps < 0 or step <= steps

    @staticmethod
    def _set_trainable(module: torch.nn.Module, trainable: bool) -> None:
        for p in module.parameters():
            p.requires_grad_(trainable)

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        if self.training and (self.freeze_frontend_steps or self.freeze_encoder_steps):
            self.num_updates += 1
            step = int(self.num_updates)
            encoder_frozen = self._frozen(step, self.freeze_encoder_steps)
            self._set_trainable(self.encoder, not encoder_frozen)
            self._set_trainable(self.frontend, not (encoder_frozen or self._frozen(step, self.freeze_frontend_steps)))
        return super().forward(speech, speech_lengths, text, text_lengths, **kwargs)
