"""Reading the audio that ``wav.scp`` points to, with errors that name the utterance.

An entry is either a path (any format libsndfile reads: wav, flac, ...) or a
Kaldi pipe command ending in ``|`` whose standard output is a WAV stream.
"""

import io
import struct
import subprocess
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import soundfile

INT16_SCALE = 32768.0


class AudioError(ValueError):
    """An utterance's audio is missing, unreadable or not in the expected format."""


def _declared_wav_data_size(path: Path) -> Optional[Tuple[int, int]]:
    """Return ``(data_offset, declared_size)`` of a RIFF/WAVE file, None if not WAV.

    Used to detect truncation, which libsndfile silently tolerates.
    """
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                return f.tell(), size
            f.seek(size + (size & 1), io.SEEK_CUR)


def _check_not_truncated(utt_id: str, path: Path) -> None:
    declared = _declared_wav_data_size(path)
    if declared is None:
        return
    offset, size = declared
    if size in (0, 0xFFFFFFFF):  # streamed WAV: size unknown when it was written
        return
    present = path.stat().st_size - offset
    if present < size:
        raise AudioError(
            f"utterance {utt_id!r}: {path} is truncated: its header declares "
            f"{size} bytes of audio but only {present} are present"
        )


def read_audio(utt_id: str, spec: str, expected_rate: Optional[int] = 16000) -> Tuple[np.ndarray, int]:
    """Read one ``wav.scp`` entry as mono float32 samples at int16 scale, whatever its encoding.

    16-bit PCM gives exactly its integer samples; wider PCM and float files are
    scaled to the same range (full scale = 32768), so features do not depend on
    how a signal was stored.

    Returns ``(samples, sample_rate)``.  Raises :class:`AudioError` naming the
    utterance and file when the audio is missing, truncated, corrupt, empty,
    not mono, or (with ``expected_rate``) at another sample rate.
    """
    spec = spec.strip()
    if spec.endswith("|"):
        command = spec[:-1]
        proc = subprocess.run(command, shell=True, capture_output=True)
        if proc.returncode != 0:
            raise AudioError(
                f"utterance {utt_id!r}: command {command!r} failed "
                f"(exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}"
            )
        source, where = io.BytesIO(proc.stdout), f"the output of {command!r}"
    else:
        path = Path(spec)
        if not path.is_file():
            raise AudioError(f"utterance {utt_id!r}: audio file {path} does not exist")
        _check_not_truncated(utt_id, path)
        source, where = path, str(path)
    try:
        # libsndfile scales every encoding (8-32 bit PCM, float, mu-law, FLAC, ...) to [-1, 1] when
        # asked for floats; asking for int16 would not rescale float files (samples below 0.5 become 0).
        samples, rate = soundfile.read(source, dtype="float64", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"utterance {utt_id!r}: cannot read {where}: {e}") from e
    if samples.shape[1] != 1:
        raise AudioError(f"utterance {utt_id!r}: {where} has {samples.shape[1]} channels; expected mono")
    if expected_rate is not None and rate != expected_rate:
        raise AudioError(f"utterance {utt_id!r}: {where} is sampled at {rate} Hz; expected {expected_rate} Hz")
    if samples.shape[0] == 0:
        raise AudioError(f"utterance {utt_id!r}: {where} holds no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"utterance {utt_id!r}: {where} holds non-finite samples (NaN or infinity)")
    return (samples[:, 0] * INT16_SCALE).astype(np.float32), rate


def audio_info(utt_id: str, spec: str) -> Tuple[int, int, int]:
    """Return ``(num_samples, sample_rate, channels)`` of a file entry from its header."""
    path = Path(spec.strip())
    if not path.is_file():
        raise AudioError(f"utterance {utt_id!r}: audio file {path} does not exist")
    _check_not_truncated(utt_id, path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"utterance {utt_id!r}: cannot read {path}: {e}") from e
    return info.frames, info.samplerate, info.channels
