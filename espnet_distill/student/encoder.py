"""``encoder: transformer``: a HuBERT-style Transformer student encoder.

Built from torchaudio's wav2vec 2.0 modules (convolutional positional
embedding, pre- or post-LN layers), so that it can copy a teacher's first layers
and its hidden states follow the teacher's convention: index 0 is the input of
the first layer, index ``i`` the output of layer ``i``.
"""

import logging
from typing import List, Optional, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from torchaudio.models.wav2vec2.components import ConvolutionalPositionalEmbedding, SelfAttention

from espnet_distill.seams import torchaudio_build_encoder, wav2vec2_transformer_preprocess
from espnet_distill.student.attention import HeadsSelfAttention, UnitsFeedForward
from espnet_distill.utils.masks import attention_bias, padding_mask

logger = logging.getLogger(__name__)


class TransformerStudentEncoder(AbsEncoder):
    """A Transformer encoder with HuBERT's positional convolution.

    Args:
        input_size: width of the front-end output; a linear layer maps it to
            ``output_size`` when they differ.
        output_size: width of every layer.
        num_layers: number of layers.
        attention_heads: heads per layer.
        ffn_dim: hidden size of the feed-forward blocks.
        pos_conv_kernel: kernel of the convolutional positional embedding.
        pos_conv_groups: its groups.
        layer_norm_first: pre-LN layers (and a final layer norm) when true.
        dropout: dropout after attention and feed-forward blocks and on the input.
        attention_dropout: dropout on attention weights.
        activation_dropout: dropout inside the feed-forward blocks.
        layer_drop: probability of skipping a layer in training.
        layer_heads: a pruned student's heads in each layer (of width ``output_size / attention_heads``;
            0: the layer has no attention), instead of ``attention_heads`` in every layer.
        layer_ffn_dims: a pruned student's feed-forward units in each layer (0: none), instead of ``ffn_dim``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 768,
        num_layers: int = 2,
        attention_heads: int = 12,
        ffn_dim: int = 3072,
        pos_conv_kernel: int = 128,
        pos_conv_groups: int = 16,
        layer_norm_first: bool = False,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layer_drop: float = 0.0,
        layer_heads: Optional[List[int]] = None,
        layer_ffn_dims: Optional[List[int]] = None,
    ) -> None:
        super().__init__()
        if output_size % attention_heads:
            raise ValueError(f"output_size {output_size} is not divisible by attention_heads {attention_heads}")
        if output_size % pos_conv_groups:
            raise ValueError(f"output_size {output_size} is not divisible by pos_conv_groups {pos_conv_groups}")
        self.input_layer = torch.nn.Linear(input_size, output_size) if input_size != output_size else None
        encoder = torchaudio_build_encoder(
            in_features=output_size,
            embed_dim=output_size,
            dropout_input=0.0,
            pos_conv_kernel=pos_conv_kernel,
            pos_conv_groups=pos_conv_groups,
            num_layers=num_layers,
            num_heads=attention_heads,
            attention_dropout=attention_dropout,
            ff_interm_features=ffn_dim,
            ff_interm_dropout=activation_dropout,
            dropout=dropout,
            layer_norm_first=layer_norm_first,
            layer_drop=layer_drop,
        )
        self.transformer = encoder.transformer
        self._output_size = output_size
        for name, sizes in (("layer_heads", layer_heads), ("layer_ffn_dims", layer_ffn_dims)):
            if sizes is not None and (len(sizes) != num_layers or any(int(n) < 0 for n in sizes)):
                raise ValueError(f"{name} needs a size of at least 0 for each of the {num_layers} layers, got {sizes}")
        head_dim = output_size // attention_heads
        for index, layer in enumerate(self.transformer.layers):
            if layer_heads is not None and layer_heads[index] != attention_heads:
                layer.attention = HeadsSelfAttention(output_size, int(layer_heads[index]), head_dim, attention_dropout)
            if layer_ffn_dims is not None and layer_ffn_dims[index] != ffn_dim:
                layer.feed_forward = UnitsFeedForward(
                    output_size, int(layer_ffn_dims[index]), activation_dropout, dropout
                )

    def output_size(self) -> int:
        return self._output_size

    @property
    def num_layers(self) -> int:
        return len(self.transformer.layers)

    def hidden_states(self, xs_pad: torch.Tensor, ilens: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Every hidden state: ``num_layers + 1`` tensors ``(batch, frames, output_size)``."""
        x = self.input_layer(xs_pad) if self.input_layer is not None else xs_pad
        pad = padding_mask(ilens, x.shape[1])
        x = x.masked_fill(pad[..., None], 0.0)
        bias = attention_bias(pad, x.dtype)
        transformer = self.transformer
        x = wav2vec2_transformer_preprocess(transformer, x)
        states = [x]
        for layer in transformer.layers:
            if not (self.training and transformer.layer_drop > 0 and torch.rand(1).item() < transformer.layer_drop):
                x, _ = layer(x, bias)
            states.append(x)
        return states, ilens

    @property
    def pre_layer_norm(self) -> bool:
        """Pre-LN layers (torchaudio's ``Transformer.layer_norm_first`` means the opposite)."""
        return bool(self.transformer.layers[0].layer_norm_first)

    def final_output(self, states: List[torch.Tensor]) -> torch.Tensor:
        """The encoder output from :meth:`hidden_states`: the last layer, normed for pre-LN."""
        if self.pre_layer_norm:
            return self.transformer.layer_norm(states[-1])
        return states[-1]

    def forward(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        states, olens = self.hidden_states(xs_pad, ilens)
        return self.final_output(states), olens, None

    def init_from_teacher(self, teacher_model: torch.nn.Module) -> None:
        """Copy the positional convolution, layer norm and the first layers of a torchaudio ``Wav2Vec2Model``."""
        source = teacher_model.encoder.transformer
        for module, plain, what in (
            (source.pos_conv_embed, ConvolutionalPositionalEmbedding, "positional embedding"),
            (source.layers[0].attention, SelfAttention, "attention"),
        ):
            if type(module) is not plain:
                raise ValueError(
                    f"the teacher's {what} is a {type(module).__name__} (WavLM's gated relative-position attention, "
                    f"data2vec-audio's stack of positional convolutions), not the {plain.__name__} this student "
                    "has: init_from_teacher's 'encoder' (and a student copied from the teacher, such as a pruning "
                    "run's preset: teacher) needs a HuBERT or wav2vec 2.0 teacher; distill a built student "
                    "(preset deep_thin or shallow_wide) from this one"
                )
        if len(source.layers) < self.num_layers:
            raise ValueError(f"cannot init {self.num_layers} layers from a {len(source.layers)}-layer teacher")
        if source.layers[0].layer_norm_first != self.pre_layer_norm:
            raise ValueError("encoder_conf.layer_norm_first differs from the teacher's; cannot init_from_teacher")
        try:
            self.transformer.pos_conv_embed.load_state_dict(source.pos_conv_embed.state_dict())
            self.transformer.layer_norm.load_state_dict(source.layer_norm.state_dict())
            for mine, theirs in zip(self.transformer.layers, source.layers):
                mine.load_state_dict(theirs.state_dict())
        except RuntimeError as e:
            raise ValueError(f"encoder_conf does not match the teacher's layers, cannot init_from_teacher: {e}") from e
        logger.info("transformer encoder: positional conv and %d layers initialised from the teacher", self.num_layers)
