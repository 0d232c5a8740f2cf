"""The frozen teacher: every hidden layer, output lengths, codeword logits.

Every loader (fairseq, Hugging Face, torchaudio, ESPnet, WavLM) builds
torchaudio's ``Wav2Vec2Model`` (HuBERT, wav2vec 2.0 and data2vec-audio
layers, or WavLM's with relative position bias) and, where the checkpoint has
them, HuBERT's codeword head (``final_proj`` and the label embeddings).
"""

from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn.functional as F
from torchaudio.models import Wav2Vec2Model
from torchaudio.models.wav2vec2.wavlm_attention import WavLMSelfAttention

from espnet_distill.frontend.conv import conv_features
from espnet_distill.seams import wav2vec2_encoder_preprocess, wav2vec2_transformer_preprocess


@dataclass
class TeacherOutput:
    """What a teacher returns for a padded batch.

    Attributes:
        hidden_states: ``L + 1`` tensors ``(batch, frames, dim)``: index 0 is the
            input of the first Transformer layer (CNN features after projection,
            positional convolution and, for post-LN models, layer norm);
            index ``i`` is the output of Transformer layer ``i`` (for pre-LN models
            before the encoder's final layer norm, as Hugging Face reports them).
        lengths: valid frames of each utterance ``(batch,)``.
        codeword_logits: ``(batch, frames, num_codewords)``: cosine similarity of
            ``final_proj(encoder output)`` and the codeword embeddings divided by
            HuBERT's temperature; None when the checkpoint has no codeword head.
    """

    hidden_states: List[torch.Tensor]
    lengths: torch.Tensor
    codeword_logits: Optional[torch.Tensor] = None


class HubertTeacher(torch.nn.Module):
    """A frozen HuBERT-class model (eval mode, no layerdrop, no gradients)."""

    def __init__(
        self,
        model: Wav2Vec2Model,
        final_proj: Optional[torch.nn.Linear] = None,
        label_embeddings: Optional[torch.Tensor] = None,
        logit_temp: float = 0.1,
        normalize_waveform: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        # wav2vec 2.0 Large (LV-60), WavLM Large: trained on each utterance normalized to zero mean, unit variance.
        self.normalize_waveform = normalize_waveform
        self.final_proj = final_proj
        if label_embeddings is not None:
            self.register_buffer("label_embeddings", label_embeddings.detach().float().clone())  # float16 releases too
        else:
            self.label_embeddings = None
        self.logit_temp = logit_temp
        self.model.encoder.transformer.layer_drop = 0.0
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "HubertTeacher":
        """A teacher stays in eval mode whatever its parent module does."""
        return super().train(False)

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.transformer.layers)

    @property
    def is_wavlm(self) -> bool:
        return isinstance(self.model.encoder.transformer.layers[0].attention, WavLMSelfAttention)

    @property
    def hidden_size(self) -> int:
        return self.model.encoder.feature_projection.projection.out_features

    @property
    def has_codewords(self) -> bool:
        return self.final_proj is not None and self.label_embeddings is not None

    def normalized(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each utterance at zero mean and unit variance over its own samples (fairseq's
        ``F.layer_norm(wav, wav.shape)``, eps 1e-5), padding left at zero; the input itself when not normalizing."""
        if not self.normalize_waveform:
            return waveforms
        valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        count = lengths.clamp(min=1).to(waveforms.dtype)[:, None]
        mean = (waveforms * valid).sum(1, keepdim=True) / count
        var = (((waveforms - mean) * valid) ** 2).sum(1, keepdim=True) / count
        return ((waveforms - mean) / torch.sqrt(var + 1e-5)) * valid

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> TeacherOutput:
        """Run the teacher on ``(batch, samples)`` waveforms (float, [-1, 1] scale)."""
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        waveforms = self.normalized(waveforms, lengths)
        features, frame_lengths = conv_features(self.model.feature_extractor, waveforms, lengths)
        x, attention_mask = wav2vec2_encoder_preprocess(self.model.encoder, features, frame_lengths)
        transformer = self.model.encoder.transformer
        x = wav2vec2_transformer_preprocess(transformer, x)
        hidden_states = [x]
        position_bias = None
        if self.is_wavlm:  # WavLM's attention takes a key padding mask, not an additive mask
            pad = torch.arange(x.shape[1], device=x.device)[None, :] >= frame_lengths[:, None]
            masks = dict(attention_mask=None, key_padding_mask=pad if bool(pad.any()) else None)
        else:
            masks = dict(attention_mask=attention_mask)
        for layer in transformer.layers:
            x, position_bias = layer(x, position_bias=position_bias, **masks)
            hidden_states.append(x)
        logits = None
        if self.has_codewords:
            # A pre-LN model (HuBERT Large) normalizes its output before the head.
            output = x if transformer.layer_norm_first else transformer.layer_norm(x)
            logits = self.codeword_logits(output)
        return TeacherOutput(hidden_states, frame_lengths, logits)

    @torch.no_grad()
    def projected_features(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """The CNN features after the feature projection (the Transformer's input before the
        positional convolution), ``(batch, frames, dim)``, and frame counts; runs no Transformer layer."""
        waveforms = self.normalized(waveforms, lengths)
        features, frame_lengths = conv_features(self.model.feature_extractor, waveforms, lengths)
        x, _ = wav2vec2_encoder_preprocess(self.model.encoder, features, frame_lengths)
        return x, frame_lengths

    def codeword_logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """Cosine similarity to each codeword embedding, over HuBERT's temperature."""
        projected = F.normalize(self.final_proj(last_hidden).float(), dim=-1)
        codewords = F.normalize(self.label_embeddings.float(), dim=-1)
        return projected @ codewords.t() / self.logit_temp
