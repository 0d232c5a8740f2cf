"""The weighted layer sum of a frozen upstream, as an ESPnet front-end (``frontend: upstream``).

SUPERB's featurizer: each hidden state is normalized over its features (layer norm without
parameters), and the states are summed with weights ``softmax(w)``, ``w`` learnt with the downstream
and starting equal.  Only ``w`` and the downstream learn: the upstream runs without gradients.
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from espnet2.asr.frontend.abs_frontend import AbsFrontend

from espnet_distill.superb.upstream import load_upstream

LAYER_WEIGHTS = "frontend.layer_weights"  # the learnt weights' key in a trained model's state dict


class WeightedLayersFrontend(AbsFrontend):
    """A frozen upstream's hidden states, summed with learnt softmax weights.

    Args:
        upstream: a student dir or a ``teacher.yaml`` (:func:`~espnet_distill.superb.upstream.load_upstream`).
        random_init: the student dir's structure with random weights (the untrained floor).
        seed: the random weights' seed.
        normalize: layer-normalize each hidden state before the sum (SUPERB's default); a single state
            (the ``fbank`` upstream) is passed on as it is.
        stats_file, fbank_conf: the ``fbank`` upstream's CMVN statistics and Kaldi fbank options.
    """

    def __init__(
        self,
        upstream: str,
        random_init: bool = False,
        seed: int = 0,
        normalize: bool = True,
        stats_file: Optional[str] = None,
        fbank_conf: Optional[dict] = None,
    ) -> None:
        super().__init__()
        self.upstream = load_upstream(upstream, random_init, seed, stats_file=stats_file, fbank_conf=fbank_conf)
        self.normalize = normalize and self.upstream.num_states > 1
        self.layer_weights = torch.nn.Parameter(torch.zeros(self.upstream.num_states))

    def output_size(self) -> int:
        return self.upstream.output_size()

    @property
    def frame_shift(self) -> int:
        return self.upstream.frame_shift

    def weights(self) -> List[float]:
        """The normalized weight of each hidden state (index 0: the first layer's input)."""
        return torch.softmax(self.layer_weights.detach().float(), dim=0).tolist()

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            states, lengths = self.upstream(input, input_lengths)
        stacked = torch.stack(states)  # (states, batch, frames, features)
        if self.normalize:
            stacked = F.layer_norm(stacked, stacked.shape[-1:])
        weights = torch.softmax(self.layer_weights, dim=0).to(stacked.dtype)
        return torch.einsum("s,sbtf->btf", weights, stacked), lengths


def layer_weights_of(state: dict) -> List[float]:
    """The normalized layer weights in a trained model's state dict."""
    if LAYER_WEIGHTS not in state:
        raise KeyError(f"no {LAYER_WEIGHTS} in the model: not a frozen-upstream (frontend: upstream) model")
    return torch.softmax(state[LAYER_WEIGHTS].float(), dim=0).tolist()
