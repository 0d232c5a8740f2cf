"""Codewords for teachers without HuBERT's codeword head (e.g. Hugging Face models).

k-means (scikit-learn's ``MiniBatchKMeans``) of the length-normalized frames
of one teacher layer (:mod:`~espnet_distill.make_teacher.layer_frames`).  The
discriminative loss then takes the teacher's distribution as the softmax of the
cosine between that layer and these codewords, and the student's from the
cosine of its projection to them.
"""

from pathlib import Path
from typing import Union

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans

from espnet_distill.files.codebook import write_codebook
from espnet_distill.make_teacher.layer_frames import teacher_layer_features
from espnet_distill.teacher.hubert import HubertTeacher

PathLike = Union[str, Path]


def teacher_layer_frames(teacher: HubertTeacher, wav_scp: PathLike, layer: int, max_utterances: int) -> np.ndarray:
    """Frames ``(N, dim)`` of teacher ``layer`` over the first ``max_utterances`` of ``wav_scp``."""
    features = teacher_layer_features(teacher, wav_scp, layer, max_utterances, progress=False)
    return np.concatenate(list(features.values()))


def fit_codebook(
    teacher: HubertTeacher,
    wav_scp: PathLike,
    layer: int,
    num_codewords: int = 100,
    max_utterances: int = 1000,
    seed: int = 1,
) -> torch.Tensor:
    """k-means codewords ``(num_codewords, dim)`` of teacher ``layer`` (unit-length frames and centroids)."""
    frames = teacher_layer_frames(teacher, wav_scp, layer, max_utterances)
    if len(frames) < num_codewords:
        raise ValueError(f"{len(frames)} frames are too few for {num_codewords} codewords; use more utterances")
    frames /= np.linalg.norm(frames, axis=1, keepdims=True).clip(min=1e-8)
    kmeans = MiniBatchKMeans(n_clusters=num_codewords, random_state=seed, n_init=3, batch_size=4096)
    kmeans.fit(frames)
    centers = kmeans.cluster_centers_
    centers /= np.linalg.norm(centers, axis=1, keepdims=True).clip(min=1e-8)
    return torch.from_numpy(centers.astype(np.float32))


def save_codebook(path: PathLike, codewords: torch.Tensor, layer: int) -> None:
    """Write the npz that ``model_conf.codebook`` names (:mod:`espnet_distill.files.codebook`)."""
    write_codebook(path, codewords.numpy(), layer)
