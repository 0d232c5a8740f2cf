"""Reference fbank implementations for the tests.

``knf_fbank``: kaldi-native-fbank, a Kaldi-exact implementation in float32.
``exact_fbank``: Kaldi's algorithm written out in NumPy float64, independent
of torchaudio, to tell float32 round-off in the reference from real errors.

Each takes samples in [-1, 1], as the package's reader gives them and
:func:`espnet_distill.features.fbank.compute_fbank` takes them, and scales them
to Kaldi's int16 range itself (its own constant, not the package's).
"""

import kaldi_native_fbank as knf
import numpy as np

from espnet_distill.features.fbank import FbankOptions

KALDI_SCALE = 32768.0  # Kaldi reads 16-bit samples as their integer values


def knf_fbank(samples: np.ndarray, opts: FbankOptions) -> np.ndarray:
    ref = knf.FbankOptions()
    ref.frame_opts.samp_freq = opts.sample_rate
    ref.frame_opts.frame_length_ms = opts.frame_length
    ref.frame_opts.frame_shift_ms = opts.frame_shift
    ref.frame_opts.dither = 0.0
    ref.frame_opts.preemph_coeff = opts.preemphasis_coefficient
    ref.frame_opts.remove_dc_offset = opts.remove_dc_offset
    ref.frame_opts.snip_edges = opts.snip_edges
    ref.frame_opts.window_type = "povey"
    ref.mel_opts.num_bins = opts.num_mel_bins
    ref.mel_opts.low_freq = opts.low_freq
    ref.mel_opts.high_freq = opts.high_freq
    ref.energy_floor = opts.energy_floor
    ref.use_energy = False
    fbank = knf.OnlineFbank(ref)
    fbank.accept_waveform(opts.sample_rate, (np.asarray(samples, dtype=np.float64) * KALDI_SCALE).tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def _mel(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq) / 700.0)


def exact_fbank(samples: np.ndarray, opts: FbankOptions) -> np.ndarray:
    """Kaldi's fbank (snip_edges, Povey window, no energy) in float64."""
    assert opts.snip_edges and opts.dither == 0.0 and opts.energy_floor == 0.0
    length = int(opts.sample_rate * opts.frame_length / 1000)
    shift = int(opts.sample_rate * opts.frame_shift / 1000)
    fft_size = 1 << (length - 1).bit_length()
    count = 1 + (len(samples) - length) // shift
    samples = np.asarray(samples, dtype=np.float64) * KALDI_SCALE
    frames = np.stack([samples[i * shift : i * shift + length] for i in range(count)])
    if opts.remove_dc_offset:
        frames -= frames.mean(axis=1, keepdims=True)
    emphasized = frames.copy()
    emphasized[:, 1:] -= opts.preemphasis_coefficient * frames[:, :-1]
    emphasized[:, 0] -= opts.preemphasis_coefficient * frames[:, 0]
    n = np.arange(length)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / (length - 1))) ** 0.85
    power = np.abs(np.fft.rfft(emphasized * window, fft_size)) ** 2
    nyquist = opts.sample_rate / 2
    high = opts.high_freq if opts.high_freq > 0 else nyquist + opts.high_freq
    low_mel, high_mel = _mel(opts.low_freq), _mel(high)
    delta = (high_mel - low_mel) / (opts.num_mel_bins + 1)
    fft_mel = _mel(np.arange(fft_size // 2) * opts.sample_rate / fft_size)
    banks = np.zeros((opts.num_mel_bins, fft_size // 2 + 1))
    for b in range(opts.num_mel_bins):
        left, center, right = low_mel + b * delta, low_mel + (b + 1) * delta, low_mel + (b + 2) * delta
        up = (fft_mel - left) / (center - left)
        down = (right - fft_mel) / (right - center)
        inside = (fft_mel > left) & (fft_mel < right)
        banks[b, :-1] = np.where(inside, np.minimum(up, down), 0.0)
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))


def compare_with_kaldi(samples: np.ndarray, feats: np.ndarray, opts: FbankOptions) -> dict:
    """Differences of ``feats`` from kaldi-native-fbank and from exact arithmetic.

    ``knf_max``: max abs difference to kaldi-native-fbank over entries where
    kaldi-native-fbank is itself within ``REFERENCE_ROUNDOFF`` of exact
    arithmetic; ``imprecise_entries``: how many entries were not (float32
    round-off in spectral nulls of the narrow low-frequency bins).
    """
    knf_feats, exact = knf_fbank(samples, opts), exact_fbank(samples, opts)
    assert feats.shape == knf_feats.shape == exact.shape
    precise = np.abs(knf_feats - exact) <= REFERENCE_ROUNDOFF
    return {
        "exact_max": float(np.abs(feats - exact).max()),
        "knf_max": float(np.abs(feats - knf_feats)[precise].max()),
        "knf_max_all": float(np.abs(feats - knf_feats).max()),
        "imprecise_entries": int((~precise).sum()),
        "entries": int(feats.size),
    }


REFERENCE_ROUNDOFF = 5e-4
