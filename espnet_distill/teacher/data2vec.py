"""data2vec-audio on torchaudio's model: its positional embedding, the one module torchaudio lacks.

data2vec-audio is wav2vec 2.0's network with a stack of convolutions as its positional embedding;
:func:`use_data2vec_positional_conv` puts :class:`Data2VecPositionalConv` in the place of torchaudio's
``ConvolutionalPositionalEmbedding`` and renames the checkpoint's keys to it.  Its checkpoints come as
Hugging Face directories (:mod:`~espnet_distill.teacher.huggingface`, ``model_type: data2vec-audio``),
built by :func:`~espnet_distill.teacher.build.build_teacher` (``family="data2vec"``).
"""

import re
from typing import Any, Dict, Mapping

import torch
import torch.nn.functional as F


class Data2VecPositionalConv(torch.nn.Module):
    """data2vec-audio's positional embedding: a stack of (grouped conv, LayerNorm without affine, GELU).

    Takes and returns ``(batch, frames, dim)``, like torchaudio's
    ``ConvolutionalPositionalEmbedding`` it replaces in the Transformer.
    """

    def __init__(self, embed_dim: int, kernel_size: int, groups: int, num_layers: int) -> None:
        super().__init__()
        self.embed_dim, self.kernel_size = embed_dim, kernel_size
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=groups)
            for _ in range(num_layers)
        )

    @property
    def conv(self) -> torch.nn.Conv1d:
        """The first convolution (what TeacherShape reads: its groups)."""
        return self.convs[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
            if self.kernel_size % 2 == 0:
                x = x[..., :-1]
            x = F.gelu(F.layer_norm(x.transpose(1, 2), (self.embed_dim,)).transpose(1, 2))
        return x.transpose(1, 2)


def data2vec_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``pos_conv_embed.layers.<i>.conv.*`` (Hugging Face) -> ``pos_conv_embed.convs.<i>.*``."""
    return {
        re.sub(r"pos_conv_embed\.layers\.(\d+)\.conv\.", r"pos_conv_embed.convs.\1.", k): v for k, v in state.items()
    }


def use_data2vec_positional_conv(
    model: torch.nn.Module, kwargs: Mapping[str, Any], num_layers: int, state: Mapping[str, torch.Tensor]
) -> Dict[str, torch.Tensor]:
    """Give ``model`` (torchaudio's, built with ``kwargs``) data2vec's positional embedding of
    ``num_layers`` convolutions; returns ``state`` with its keys renamed to it."""
    transformer = model.encoder.transformer
    transformer.pos_conv_embed = Data2VecPositionalConv(
        kwargs["encoder_embed_dim"],
        kwargs["encoder_pos_conv_kernel"],
        kwargs["encoder_pos_conv_groups"],
        num_layers,
    )
    return data2vec_keys(state)
