"""Audio for inference: float32 samples in [-1, 1] at 16 kHz, from a data dir's ``wav.scp`` or from any recording.

- :func:`read_utterance`: one ``wav.scp`` entry (a file or a Kaldi pipe), read
  by :func:`espnet_distill.data.audio.read_audio` (mono, 16 kHz, checked, errors
  naming the utterance, samples as the models take them), its length checked
  against a model's receptive field.  Data-dir decoding, the ONNX parity check,
  int8 calibration and the benchmarks read through it.
- :func:`load_audio`: a person's recording for ``transcribe``: any format
  libsndfile reads, every channel averaged to mono, another sample rate
  resampled to 16 kHz with torchaudio's windowed-sinc resampler (Kaiser window,
  librosa's ``kaiser_best`` settings: 64 zero crossings, rolloff 0.9476, beta
  14.77).

Importing this module costs numpy and libsndfile only: torch and torchaudio
are imported when a recording needs resampling.
"""

from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_distill.data.audio import AudioError, check_not_truncated, read_audio

SAMPLE_RATE = 16000
RESAMPLER = dict(
    resampling_method="sinc_interp_kaiser", lowpass_filter_width=64, rolloff=0.9475937167399596, beta=14.769656459379492
)


class TranscribeError(ValueError):
    """A recording that cannot be transcribed; the message names the file."""


def read_utterance(utt: str, spec: str, shortest: int = 1, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One ``wav.scp`` entry as float32 samples in [-1, 1] (:func:`~espnet_distill.data.audio.read_audio`);
    an :class:`AudioError` names the utterance when it has fewer than ``shortest`` samples (a model's
    receptive field: the shortest input that gives one frame)."""
    samples, _ = read_audio(utt, spec, expected_rate=sample_rate)
    if len(samples) < shortest:
        raise AudioError(
            f"utterance {utt!r}: {len(samples)} samples is shorter than the front-end's receptive field ({shortest} samples)"
        )
    return samples


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """float64 ``samples`` at ``rate`` resampled to ``target`` (:data:`RESAMPLER`), float64."""
    import torch
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(samples), rate, target, **RESAMPLER).numpy()


def load_audio(path: Path) -> np.ndarray:
    """A recording as float32 mono samples in [-1, 1] at 16 kHz.

    A WAV file shorter than its header declares (an interrupted copy or
    download, which libsndfile reads without complaint) is an error, as are a
    file that cannot be read, one without samples and one with non-finite
    samples: each a :class:`TranscribeError` naming ``path``.
    """
    try:
        samples, rate = sf.read(str(path), dtype="float64", always_2d=True)
        check_not_truncated(path)
    except AudioError as e:
        raise TranscribeError(str(e)) from e
    except (RuntimeError, sf.LibsndfileError, OSError) as e:
        raise TranscribeError(f"{path}: cannot read audio: {e}") from e
    if samples.size == 0:
        raise TranscribeError(f"{path}: holds no samples")
    if not np.isfinite(samples).all():
        raise TranscribeError(f"{path}: has non-finite samples (NaN or infinity)")
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = resample(mono, rate)
    return mono.astype(np.float32)
