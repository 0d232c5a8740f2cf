"""Kaldi-compatible log-mel filterbank features and global CMVN statistics.

The features follow Kaldi's ``compute-fbank-feats`` convention: samples at
int16 scale, 25 ms Povey windows every 10 ms, pre-emphasis 0.97, DC removal,
``energy_floor`` 0 and, for evaluation data, no dither.  The computation is
torchaudio's ``compliance.kaldi.fbank``; the stage writes exactly what the
on-the-fly Fbank front-end computes from the same waveform.

Waveforms everywhere in the package are float samples in [-1, 1], as
:func:`espnet_distill.data.audio.read_audio` gives them and models take them;
:func:`kaldi_waveform` is the one place that scales them to Kaldi's int16 range,
called by every Kaldi feature computation (:func:`compute_fbank`, the Fbank
front-end's batched filterbank, the MFCCs of HuBERT's first k-means labels).
"""

import math
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

INT16_SCALE = 32768.0  # Kaldi's full scale: its features take samples at int16 scale


def kaldi_waveform(waveform: torch.Tensor) -> torch.Tensor:
    """A waveform in [-1, 1] at Kaldi's int16 scale, in its own dtype (exact: the scale is a power of two)."""
    return waveform * INT16_SCALE


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


class FbankOptionsError(ValueError):
    """An fbank option has a value that cannot give features (the message names the option)."""


def check_options(opts: FbankOptions) -> None:
    """Raise :class:`FbankOptionsError` naming the first option whose value makes no sense.

    The limits are Kaldi's: at least 3 mel bins, none of them empty; windows of
    at least 2 samples; ``0 <= low_freq < high_freq <= sample_rate / 2`` (a
    ``high_freq <= 0`` is an offset from the Nyquist frequency).
    """

    def bad(name: str, why: str) -> FbankOptionsError:
        return FbankOptionsError(f"fbank option {name}={getattr(opts, name)!r}: {why}")

    for field in fields(FbankOptions):
        value = getattr(opts, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(field.name, "must be a finite number")
    if opts.num_mel_bins < 3:
        raise bad("num_mel_bins", "must be at least 3")
    if opts.sample_rate <= 0:
        raise bad("sample_rate", "must be positive")
    if opts.frame_length <= 0 or int(opts.sample_rate * opts.frame_length / 1000) < 2:
        raise bad("frame_length", f"must be positive and span at least 2 samples at {opts.sample_rate} Hz")
    if opts.frame_shift <= 0 or int(opts.sample_rate * opts.frame_shift / 1000) < 1:
        raise bad("frame_shift", f"must be positive and span at least 1 sample at {opts.sample_rate} Hz")
    if opts.dither < 0:
        raise bad("dither", "must be 0 (none) or positive")
    if not 0.0 <= opts.preemphasis_coefficient <= 1.0:
        raise bad("preemphasis_coefficient", "must be between 0 and 1")
    if opts.energy_floor < 0:
        raise bad("energy_floor", "must be 0 or positive")
    nyquist = opts.sample_rate / 2
    high = opts.high_freq if opts.high_freq > 0 else nyquist + opts.high_freq
    if not 0.0 <= opts.low_freq < nyquist:
        raise bad("low_freq", f"must be at least 0 and below the Nyquist frequency {nyquist:g} Hz")
    if not opts.low_freq < high <= nyquist:
        raise bad(
            "high_freq",
            f"gives a top frequency of {high:g} Hz, which must be above low_freq={opts.low_freq:g} "
            f"and at most the Nyquist frequency {nyquist:g} Hz",
        )
    window = int(opts.sample_rate * opts.frame_length / 1000)
    padded = 1 << (window - 1).bit_length()
    banks, _ = kaldi.get_mel_banks(
        opts.num_mel_bins, padded, float(opts.sample_rate), opts.low_freq, opts.high_freq, 100.0, -500.0, 1.0
    )
    empty = int((~(banks > 0).any(dim=1)).sum())
    if empty:
        raise bad(
            "num_mel_bins",
            f"too many for a {padded}-point FFT between {opts.low_freq:g} and {high:g} Hz: {empty} of the bins would be empty",
        )


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
        samples: 1-D waveform in [-1, 1] (:func:`espnet_distill.data.audio.read_audio`);
            scaled to int16 range here (:func:`kaldi_waveform`).
        seed_key: with dither, the utterance id that seeds the noise, so that
            features are reproducible and independent of job splitting.
    """
    # float64 inside: float32 Kaldi implementations differ from exact
    # arithmetic by up to 1e-3 in weak bins (pre-emphasis cancels low frequencies).
    waveform = kaldi_waveform(torch.as_tensor(samples).to(torch.float64).reshape(1, -1))
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
