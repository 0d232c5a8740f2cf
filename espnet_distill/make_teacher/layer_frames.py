"""The frames of one teacher layer over the utterances of a ``wav.scp``: what k-means is fitted to both
for HuBERT's targets of a later iteration (:mod:`~espnet_distill.make_teacher.kmeans_labels`) and for a
teacher codebook (:mod:`~espnet_distill.make_teacher.codebook`).
"""

from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_wav_scp
from espnet_distill.teacher.hubert import HubertTeacher

PathLike = Union[str, Path]


@torch.no_grad()
def teacher_layer_features(
    teacher: HubertTeacher,
    wav_scp: Union[PathLike, Mapping[str, str]],
    layer: int,
    max_utterances: Optional[int] = None,
    progress: bool = True,
) -> Dict[str, np.ndarray]:
    """Frames ``(frames, dim)`` of ``teacher``'s ``layer`` (0: the projected CNN output) for every utterance.

    ``wav_scp``: a ``wav.scp`` table, or its file (read after ``layer`` is checked); ``max_utterances``: only
    its first ones; ``progress``: a progress bar on stderr.
    """
    if not 0 <= layer <= teacher.num_layers:
        raise ValueError(f"layer {layer} is outside 0..{teacher.num_layers}")
    table = wav_scp if isinstance(wav_scp, Mapping) else read_wav_scp(wav_scp)
    items = list(table.items())[:max_utterances]
    if progress:
        items = tqdm(items, desc=f"teacher layer {layer}", mininterval=10)
    features = {}
    for utt, spec in items:
        samples, _ = read_audio(utt, spec)
        wave = torch.from_numpy(samples)[None]
        features[utt] = teacher(wave).hidden_states[layer][0].numpy()
    return features
