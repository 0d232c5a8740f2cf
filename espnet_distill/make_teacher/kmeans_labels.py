"""HuBERT targets: k-means clusters of frames, one label per 20 ms.

Iteration 1 clusters MFCC (+delta, delta-delta) frames; later iterations
cluster a layer of the previous iteration's model (HuBERT's iteration 2 and
ESPnet's hubert1 recipe), whose frames are
:func:`~espnet_distill.make_teacher.layer_frames.teacher_layer_features`.
MFCC frames use a 25 ms window every 20 ms, so an
utterance of ``n`` samples gets ``1 + (n - 400) // 320`` labels: exactly one
per frame of HuBERT's convolutional front-end (receptive field 400 samples,
stride 320), which is also the teacher's frame count.
"""

from pathlib import Path
from typing import Dict, Iterable, Mapping, Tuple, Union

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
from sklearn.cluster import MiniBatchKMeans
from tqdm import tqdm

from espnet_distill.data.audio import read_audio
from espnet_distill.features.fbank import kaldi_waveform

PathLike = Union[str, Path]
LABEL_SHIFT_MS = 20.0


def mfcc_features(samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """13 MFCCs with deltas and delta-deltas, mean-normalized per utterance: ``(frames, 39)``, of
    ``samples`` in [-1, 1] (Kaldi's MFCCs, of the samples at int16 scale: :func:`kaldi_waveform`)."""
    waveform = kaldi_waveform(torch.as_tensor(samples, dtype=torch.float32).reshape(1, -1))
    mfcc = kaldi.mfcc(
        waveform,
        sample_frequency=float(sample_rate),
        frame_length=25.0,
        frame_shift=LABEL_SHIFT_MS,
        num_ceps=13,
        dither=0.0,
        energy_floor=0.0,
    )
    mfcc = mfcc - mfcc.mean(dim=0, keepdim=True)
    deltas = AF.compute_deltas(mfcc.t().unsqueeze(0)).squeeze(0).t()
    delta_deltas = AF.compute_deltas(deltas.t().unsqueeze(0)).squeeze(0).t()
    return torch.cat([mfcc, deltas, delta_deltas], dim=1).numpy()


def utterance_features(wav_scp: Mapping[str, str]) -> Dict[str, np.ndarray]:
    """MFCC features of every utterance of a ``wav.scp`` table."""
    return {
        utt: mfcc_features(read_audio(utt, spec)[0]) for utt, spec in tqdm(wav_scp.items(), desc="mfcc", mininterval=10)
    }


def fit_kmeans(
    features: Iterable[np.ndarray], num_clusters: int = 100, max_frames: int = 200000, seed: int = 1
) -> MiniBatchKMeans:
    """Fit k-means (scikit-learn's mini-batch k-means) on up to ``max_frames`` frames."""
    frames = np.concatenate(list(features))
    rng = np.random.default_rng(seed)
    if frames.shape[0] > max_frames:
        frames = frames[rng.choice(frames.shape[0], max_frames, replace=False)]
    kmeans = MiniBatchKMeans(n_clusters=num_clusters, batch_size=10000, n_init=3, max_iter=100, random_state=seed)
    return kmeans.fit(frames)


def assign_labels(kmeans: MiniBatchKMeans, features: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {utt: kmeans.predict(feats).astype(np.int64) for utt, feats in features.items()}


def majority_rate(labels: Mapping[str, np.ndarray]) -> Tuple[int, float]:
    """The most frequent cluster and its share of all frames."""
    counts = np.bincount(np.concatenate(list(labels.values())))
    return int(counts.argmax()), float(counts.max() / counts.sum())
