"""Physical pruning: the gated encoder's deterministic gates made into a smaller encoder.

For each layer, the heads and feed-forward units whose deterministic gate is 0 are removed (their rows of
the q, k, v and intermediate projections, their columns of the output projections) and the gates of the
others are folded into the output projections' columns, so the pruned encoder computes what the gated one
computed in eval mode, with ``layer_heads`` and ``layer_ffn_dims`` in its description
(:class:`~espnet_distill.student.encoder.TransformerStudentEncoder`).

A ``wav_cnn`` front-end with channel gates (:class:`~espnet_distill.prune.gates.FrontendGates`) loses the
pruned output channels of each gated convolution (its rows, its GroupNorm's entries) and the matching
input channels of the next (their columns, scaled by the kept gates); its ``conv_layers`` then state each
layer's channels.
"""

from typing import Any, Dict, Tuple

import torch

from espnet_distill.frontend.wav_cnn import WavCNNFrontend
from espnet_distill.prune.gates import EncoderGates, FrontendGates
from espnet_distill.student.encoder import TransformerStudentEncoder


def _rows(weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return weight.index_select(0, keep).clone()


def prune_state(
    encoder: TransformerStudentEncoder, gates: EncoderGates
) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(sizes, state_dict)``: the kept sizes (``layer_heads``, ``layer_ffn_dims``) and the pruned encoder's weights."""
    state = {name: value.detach().clone() for name, value in encoder.state_dict().items()}
    values = gates.deterministic()
    sizes = gates.kept_counts()
    head_dim = gates.head_dim
    for index in range(encoder.num_layers):
        prefix = f"transformer.layers.{index}."
        z = values["heads"][index]
        if z is not None:
            keep = torch.nonzero(z > 0).flatten()
            rows = (keep[:, None] * head_dim + torch.arange(head_dim)[None, :]).flatten()
            for proj in ("q_proj", "k_proj", "v_proj"):
                state[f"{prefix}attention.{proj}.weight"] = _rows(state[f"{prefix}attention.{proj}.weight"], rows)
                state[f"{prefix}attention.{proj}.bias"] = _rows(state[f"{prefix}attention.{proj}.bias"], rows)
            scale = z.index_select(0, keep).repeat_interleave(head_dim)
            out = state[f"{prefix}attention.out_proj.weight"]
            state[f"{prefix}attention.out_proj.weight"] = (out.index_select(1, rows) * scale[None, :]).clone()
        z = values["ffn"][index]
        if z is not None:
            keep = torch.nonzero(z > 0).flatten()
            for kind in ("weight", "bias"):
                name = f"{prefix}feed_forward.intermediate_dense.{kind}"
                state[name] = _rows(state[name], keep)
            out = state[f"{prefix}feed_forward.output_dense.weight"]
            scale = z.index_select(0, keep)
            state[f"{prefix}feed_forward.output_dense.weight"] = (out.index_select(1, keep) * scale[None, :]).clone()
    return sizes, state


def prune_encoder(
    encoder: TransformerStudentEncoder, encoder_conf: Dict[str, Any], input_size: int, gates: EncoderGates
) -> Tuple[TransformerStudentEncoder, Dict[str, Any]]:
    """The pruned encoder (in ``encoder``'s train/eval mode) and its ``encoder_conf``."""
    sizes, state = prune_state(encoder, gates)
    conf = {**encoder_conf, **sizes}
    pruned = TransformerStudentEncoder(input_size, **conf)
    pruned.load_state_dict(state)
    return pruned.train(encoder.training), conf


def prune_frontend_state(frontend: WavCNNFrontend, gates: FrontendGates) -> Tuple[list, Dict[str, torch.Tensor]]:
    """``(conv_layers, state_dict)``: each convolution's kept channels and the pruned front-end's weights."""
    state = {name: value.detach().clone() for name, value in frontend.state_dict().items()}
    layers = [list(layer) for layer in frontend.conv_layers]
    for index, z in enumerate(gates.deterministic()):
        keep = torch.nonzero(z > 0).flatten()
        prefix = f"extractor.conv_layers.{index}."
        for name in (
            f"{prefix}conv.weight",
            f"{prefix}conv.bias",
            f"{prefix}layer_norm.weight",
            f"{prefix}layer_norm.bias",
        ):
            if name in state:
                state[name] = _rows(state[name], keep)
        following = f"extractor.conv_layers.{index + 1}.conv.weight"
        scale = z.index_select(0, keep)
        state[following] = (state[following].index_select(1, keep) * scale[None, :, None]).clone()
        layers[index][0] = int(keep.numel())
    return layers, state


def prune_frontend(
    frontend: WavCNNFrontend, frontend_conf: Dict[str, Any], gates: FrontendGates
) -> Tuple[WavCNNFrontend, Dict[str, Any]]:
    """The pruned front-end (in ``frontend``'s train/eval mode) and its ``frontend_conf``."""
    layers, state = prune_frontend_state(frontend, gates)
    conf = {**frontend_conf, "conv_layers": layers}
    pruned = WavCNNFrontend(**conf)
    pruned.load_state_dict(state)
    return pruned.train(frontend.training), conf
