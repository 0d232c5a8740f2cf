"""Kaldi-compatible log-mel filterbank features and global CMVN statistics.

The features follow Kaldi's ``compute-fbank-feats`` convention: samples at
int16 scale, 25 ms Povey windows every 10 ms, pre-emphasis 0.97, DC removal,
``energy_floor`` 0 and, for evaluation data, no dither.  The computation is
torchaudio's ``compliance.kaldi.fbank``; the stage writes exactly what the
on-the-fly Fbank front-end computes from the same waveform.
"""

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi


@dataclass(frozen=True)
class FbankOptions:
    """Options of the Kaldi filterbank (Kaldi's names, Kaldi's defaults but dither)."""

    num_mel_bins: int = 80
    frame_length: float = 25.0  # ms
    frame_shift: float = 10.0  # ms
    sample_rate: int = 16000
    dither: float = 0.0
    preemphasis_coefficient: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from the Nyquist frequency
    energy_floor: float = 0.0
    remove_dc_offset: bool = True
    snip_edges: bool = True


def num_frames(num_samples: int, opts: FbankOptions) -> int:
    """Frames Kaldi produces for ``num_samples`` samples (``snip_edges`` true/false)."""
    window = int(opts.sample_rate * opts.frame_length / 1000)
    shift = int(opts.sample_rate * opts.frame_shift / 1000)
    if not opts.snip_edges:
        return (num_samples + shift // 2) // shift
    if num_samples < window:
        return 0
    return 1 + (num_samples - window) // shift


def compute_fbank(
    samples: Union[np.ndarray, torch.Tensor], opts: FbankOptions, seed_key: Optional[str] = None
) -> torch.Tensor:
    """Log-mel filterbank of one utterance: ``(frames, num_mel_bins)`` float32,
    computed in float64.

    Args:
        samples: 1-D waveform at int16 scale (values in [-32768, 32767]).
        seed_key: with dither, the utterance id that seeds the noise, so that
            features are reproducible and independent of job splitting.
    """
    # float64 inside: float32 Kaldi implementations differ from exact
    # arithmetic by up to 1e-3 in weak bins (pre-emphasis cancels low frequencies).
    waveform = torch.as_tensor(samples).to(torch.float64).reshape(1, -1)
    generator_state = None
    if opts.dither > 0.0:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(zlib.crc32((seed_key or "").encode("utf-8")))
    try:
        feats = kaldi.fbank(
            waveform,
            num_mel_bins=opts.num_mel_bins,
            frame_length=opts.frame_length,
            frame_shift=opts.frame_shift,
            sample_frequency=float(opts.sample_rate),
            dither=opts.dither,
            preemphasis_coefficient=opts.preemphasis_coefficient,
            low_freq=opts.low_freq,
            high_freq=opts.high_freq,
            energy_floor=opts.energy_floor,
            remove_dc_offset=opts.remove_dc_offset,
            snip_edges=opts.snip_edges,
            window_type="povey",
            use_energy=False,
            use_log_fbank=True,
            use_power=True,
            round_to_power_of_two=True,
        ).to(torch.float32)
    finally:
        if generator_state is not None:
            torch.random.set_rng_state(generator_state)
    return feats


class CMVNStats:
    """Accumulates global mean/variance statistics in float64.

    Saved in ESPnet's ``feats_stats.npz`` layout (``count``, ``sum``,
    ``sum_square``), which ESPnet's ``GlobalMVN`` reads, and as Kaldi's global
    ``cmvn.ark`` matrix (row 0: sums and count, row 1: sums of squares).
    """

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_square = np.zeros(dim, dtype=np.float64)

    def add(self, feats: np.ndarray) -> None:
        feats = np.asarray(feats, dtype=np.float64)
        self.count += feats.shape[0]
        self.sum += feats.sum(axis=0)
        self.sum_square += np.square(feats).sum(axis=0)

    def merge(self, other: "CMVNStats") -> None:
        self.count += other.count
        self.sum += other.sum
        self.sum_square += other.sum_square

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.sum_square / self.count - self.mean**2, 1e-20))

    def save_npz(self, f) -> None:
        np.savez(f, count=np.array(self.count), sum=self.sum, sum_square=self.sum_square)

    @classmethod
    def load_npz(cls, path: Union[str, Path]) -> "CMVNStats":
        with np.load(path) as data:
            stats = cls(int(data["sum"].shape[0]))
            stats.count = int(data["count"])
            stats.sum = data["sum"].astype(np.float64)
            stats.sum_square = data["sum_square"].astype(np.float64)
        return stats

    def kaldi_matrix(self) -> np.ndarray:
        matrix = np.zeros((2, self.sum.shape[0] + 1), dtype=np.float64)
        matrix[0, :-1] = self.sum
        matrix[0, -1] = self.count
        matrix[1, :-1] = self.sum_square
        return matrix


def options_dict(opts: FbankOptions) -> dict:
    """The options as a plain dict (for resolved configs)."""
    return asdict(opts)
