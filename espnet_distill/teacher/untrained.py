"""The ``untrained`` teacher: no checkpoint, HuBERT Base's structure (or fairseq-style overrides of it) with
random weights and a random codeword head, for dry runs that build and size a paper-scale recipe's models
without the real file.  Its shape is fairseq's model config (:func:`~espnet_distill.teacher.fairseq.fairseq_config`).
"""

from typing import Any

import torch
from torchaudio.models import wav2vec2_model

from espnet_distill.teacher.build import INFERENCE_OVERRIDES
from espnet_distill.teacher.fairseq import fairseq_config
from espnet_distill.teacher.hubert import HubertTeacher


def load_untrained(
    num_codewords: int = 504, codeword_dim: int = 256, seed: int = 0, **fairseq_overrides: Any
) -> HubertTeacher:
    """HuBERT Base's structure (``hubert_base_ls960.pt``: 504 codewords of 256) with random weights.

    ``fairseq_overrides`` are fairseq model config keys (``encoder_layers``,
    ``encoder_embed_dim``, ...), e.g. for HuBERT Large's shape.
    """
    config = fairseq_config(fairseq_overrides)
    kwargs = {**config, **INFERENCE_OVERRIDES, "aux_num_out": None}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = wav2vec2_model(**kwargs)
        final_proj = torch.nn.Linear(config["encoder_embed_dim"], codeword_dim)
        label_embeddings = torch.randn(num_codewords, codeword_dim)
    finally:
        torch.random.set_rng_state(generator_state)
    return HubertTeacher(model, final_proj, label_embeddings, 0.1)
