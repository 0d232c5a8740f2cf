"""Reading the audio that ``wav.scp`` points to, with errors that name the utterance.

An entry is either a path (any format libsndfile reads: wav, flac, ...) or a
Kaldi pipe command ending in ``|`` whose standard output is a WAV stream.  A
pipe runs under bash with ``pipefail``; a failure of any of its commands, or a
WAV stream shorter than its header declares, is an error.
"""

import io
import struct
import subprocess
from pathlib import Path
from typing import BinaryIO, Optional, Tuple

import numpy as np
import soundfile


class AudioError(ValueError):
    """An utterance's audio is missing, unreadable or not in the expected format."""


def _declared_wav_data_size(f: BinaryIO) -> Optional[Tuple[int, int]]:
    """Return ``(data_offset, declared_size)`` of a RIFF/WAVE stream, None if not WAV.

    Used to detect truncation, which libsndfile silently tolerates.
    """
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


def _size_is_known(size: int) -> bool:
    """False for the data sizes of a WAV streamed by a writer that could not seek back to its header:
    0 or 0xFFFFFFFF, or sox's placeholder near 2 GiB (0x7FFFF000 rounded down to whole frames)."""
    return size not in (0, 0xFFFFFFFF) and not 0x7FFF0000 <= size <= 0x7FFFF000


def _missing_bytes(f: BinaryIO, total: int) -> Optional[Tuple[int, int]]:
    """``(declared, present)`` data sizes of a WAV stream of ``total`` bytes that holds less than its
    header declares; None when it is complete, not WAV, or of unknown size."""
    declared = _declared_wav_data_size(f)
    if declared is None:
        return None
    offset, size = declared
    if not _size_is_known(size):
        return None
    present = total - offset
    return (size, present) if present < size else None


def check_not_truncated(path: Path) -> None:
    """Raise :class:`AudioError` naming ``path`` when it is a WAV file holding less audio than its header declares."""
    with open(path, "rb") as f:
        missing = _missing_bytes(f, Path(path).stat().st_size)
    if missing is not None:
        raise AudioError(
            f"{path} is truncated: its header declares {missing[0]} bytes of audio but only {missing[1]} are present"
        )


def _check_not_truncated(utt_id: str, path: Path) -> None:
    try:
        check_not_truncated(path)
    except AudioError as e:
        raise AudioError(f"utterance {utt_id!r}: {e}") from e


def _run_pipe(utt_id: str, command: str) -> bytes:
    """The standard output of a ``wav.scp`` pipe command, checked to have succeeded and be complete.

    The command runs under bash with ``pipefail``, so the failure of any part
    of a pipeline counts, not only that of its last command.
    """
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True)
    if proc.returncode != 0:
        stderr = " ".join(proc.stderr.decode(errors="replace").split())  # one line
        stderr = stderr if len(stderr) <= 300 else "..." + stderr[-300:]
        raise AudioError(
            f"utterance {utt_id!r}: command {command!r} failed (exit {proc.returncode})"
            + (f": {stderr}" if stderr else "")
        )
    missing = _missing_bytes(io.BytesIO(proc.stdout), len(proc.stdout))
    if missing is not None:
        raise AudioError(
            f"utterance {utt_id!r}: the output of command {command!r} is truncated: its WAV header declares "
            f"{missing[0]} bytes of audio but only {missing[1]} came"
        )
    return proc.stdout


def read_audio(utt_id: str, spec: str, expected_rate: Optional[int] = 16000) -> Tuple[np.ndarray, int]:
    """Read one ``wav.scp`` entry as mono float32 samples in [-1, 1], whatever its encoding.

    This is the package's one reader of a data dir's audio: models take these
    samples as they are, and Kaldi features scale them to int16 range where
    their convention needs it (:func:`espnet_distill.features.fbank.kaldi_waveform`).
    libsndfile scales every encoding to the same range (full scale = 1; 16-bit
    PCM gives exactly its integers / 32768), so neither models nor features
    depend on how a signal was stored.  A float file may hold samples beyond
    [-1, 1]; they are kept as they are.

    Returns ``(samples, sample_rate)``.  Raises :class:`AudioError` naming the
    utterance and file when the audio is missing, truncated, corrupt, empty,
    not mono, or (with ``expected_rate``) at another sample rate.
    """
    spec = spec.strip()
    if spec.endswith("|"):
        command = spec[:-1]
        source, where = io.BytesIO(_run_pipe(utt_id, command)), f"the output of {command!r}"
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
    return samples[:, 0].astype(np.float32), rate


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
