"""A strict validator of Kaldi data directories.

Checks that every file parses, ids are unique, free of whitespace and sorted
under ``LC_ALL=C``, single-value files (``utt2spk``, ``utt2dur`` ...) have two
fields a line, ``utt2spk``, ``spk2utt``, ``text``, ``wav.scp``, ``feats.scp``
and the per-utterance tables agree, transcripts are not empty, and there is no
``segments`` file (not supported).  Optionally checks audio headers and
feature matrices.
"""

import logging
from pathlib import Path
from typing import Dict, List, Optional, Union

from espnet_distill.data.audio import audio_info, read_audio
from espnet_distill.data.kaldi_dir import (
    DataDirError,
    c_sort_key,
    check_no_segments,
    read_kaldi_map,
    read_spk2utt,
    utt2spk_to_spk2utt,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
PER_UTT_FILES = ("text", "wav.scp", "feats.scp", "utt2dur", "utt2num_frames")
# Files of one value per id (a second field means an id or a value with whitespace in it);
# text and wav.scp are free text after the id (words; a path or a pipe command).
LAYOUTS = {
    "utt2spk": "<utt> <spk>",
    "feats.scp": "<utt> <ark>:<offset>",
    "utt2dur": "<utt> <seconds>",
    "utt2num_frames": "<utt> <frames>",
    "spk2gender": "<spk> <m|f>",
}


def _compare_ids(data_dir: Path, name: str, ids: List[str], utts: List[str]) -> None:
    """Raise naming the first id that is in one file but not the other."""
    wanted, have = set(utts), set(ids)
    for utt in ids:
        if utt not in wanted:
            what = " (a transcript with no audio)" if name == "text" else ""
            raise DataDirError(f"{data_dir}/{name}: utterance {utt!r} is not in utt2spk{what}")
    for utt in utts:
        if utt not in have:
            raise DataDirError(f"{data_dir}/{name}: utterance {utt!r} of utt2spk is missing")


def validate_data_dir(
    data_dir: PathLike,
    need_text: bool = True,
    need_wav: bool = True,
    need_feats: bool = False,
    check_audio: bool = False,
    sample_rate: Optional[int] = 16000,
    feat_dim: Optional[int] = None,
) -> Dict[str, int]:
    """Validate ``data_dir``; return counts, or raise :class:`DataDirError`.

    Args:
        need_text / need_wav / need_feats: which optional files must exist.
        check_audio: read each audio header (existence, truncation, rate, mono); run each
            pipe entry and check what it writes the same way.
        feat_dim: when given, load every ``feats.scp`` matrix and check it is
            ``(frames, feat_dim)`` with ``frames`` equal to ``utt2num_frames``.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataDirError(f"{data_dir}: not a directory")
    check_no_segments(data_dir / "wav.scp")
    utt2spk = _read_utt2spk(data_dir)
    utts = list(utt2spk)
    spk2utt = _check_spk2utt(data_dir, utt2spk)
    if (data_dir / "spk2gender").exists():
        _check_spk2gender(data_dir, list(spk2utt))

    required = {"text": need_text, "wav.scp": need_wav, "feats.scp": need_feats}
    tables = _read_per_utt_tables(data_dir, utts, required)
    _check_table_values(data_dir, tables)
    if check_audio and "wav.scp" in tables:
        _check_audio(tables["wav.scp"], sample_rate)
    if feat_dim is not None and "feats.scp" in tables:
        _check_feats(data_dir, tables["feats.scp"], tables.get("utt2num_frames"), feat_dim)

    counts = {"utterances": len(utts), "speakers": len(spk2utt)}
    logger.info("%s: valid (%d utterances, %d speakers)", data_dir, len(utts), len(spk2utt))
    return counts


def _read_utt2spk(data_dir: Path) -> Dict[str, str]:
    """Read ``utt2spk``: not empty, sorted, and sorted by speaker too (as Kaldi needs)."""
    utt2spk = read_kaldi_map(data_dir / "utt2spk", check_sorted=True, layout=LAYOUTS["utt2spk"])
    if not utt2spk:
        raise DataDirError(f"{data_dir}/utt2spk: no utterances")
    # Kaldi needs utt2spk sorted by utterance to be sorted by speaker too.
    speakers = list(utt2spk.values())
    for previous, (utt, spk) in zip(speakers, list(utt2spk.items())[1:]):
        if c_sort_key(spk) < c_sort_key(previous):
            raise DataDirError(
                f"{data_dir}/utt2spk: utterance {utt!r} of speaker {spk!r} sorts after a "
                f"speaker {previous!r} utterance; prefix utterance ids with the speaker id"
            )
    return utt2spk


def _check_spk2utt(data_dir: Path, utt2spk: Dict[str, str]) -> Dict[str, List[str]]:
    """Read ``spk2utt`` and check it is exactly the inverse of ``utt2spk``, in sorted order."""
    spk2utt = read_spk2utt(data_dir / "spk2utt")
    expected = utt2spk_to_spk2utt(utt2spk)
    for spk, spk_utts in spk2utt.items():
        if spk not in expected:
            raise DataDirError(f"{data_dir}/spk2utt: speaker {spk!r} is not in utt2spk")
        if spk_utts != expected[spk]:
            raise DataDirError(f"{data_dir}/spk2utt: utterances of speaker {spk!r} disagree with utt2spk")
    for spk in expected:
        if spk not in spk2utt:
            raise DataDirError(f"{data_dir}/spk2utt: speaker {spk!r} of utt2spk is missing")
    if list(spk2utt) != list(expected):
        raise DataDirError(f"{data_dir}/spk2utt: speakers are not sorted (use LC_ALL=C sort)")
    return spk2utt


def _read_per_utt_tables(data_dir: Path, utts: List[str], required: Dict[str, bool]) -> Dict[str, Dict[str, str]]:
    """Read each per-utterance file present (raising on a required one missing) with the ids of ``utt2spk``."""
    tables = {}
    for name in PER_UTT_FILES:
        path = data_dir / name
        if not path.exists():
            if required.get(name, False):
                raise DataDirError(f"{data_dir}: {name} is missing")
            continue
        table = read_kaldi_map(path, check_sorted=True, allow_empty_value=(name == "text"), layout=LAYOUTS.get(name))
        _compare_ids(data_dir, name, list(table), utts)
        tables[name] = table
    return tables


def _check_table_values(data_dir: Path, tables: Dict[str, Dict[str, str]]) -> None:
    """Transcripts are not empty; durations and frame counts are positive numbers."""
    for utt, words in tables.get("text", {}).items():
        if not words.strip():
            raise DataDirError(f"{data_dir}/text: utterance {utt!r} has an empty transcript")
    for name in ("utt2dur", "utt2num_frames"):
        for utt, value in tables.get(name, {}).items():
            try:
                number = float(value) if name == "utt2dur" else int(value)
            except ValueError:
                number = -1
            if number <= 0:
                raise DataDirError(f"{data_dir}/{name}: utterance {utt!r}: bad value {value!r}")


def _check_audio(wav_scp: Dict[str, str], sample_rate: Optional[int]) -> None:
    """Each ``wav.scp`` entry is readable, mono, non-empty and at ``sample_rate`` (pipes are run)."""
    for utt, spec in wav_scp.items():
        if spec.endswith("|"):
            # A pipe has no header to look at: run it (read_audio names the utterance and the command).
            read_audio(utt, spec, expected_rate=sample_rate)
            continue
        num_samples, rate, channels = audio_info(utt, spec)
        if channels != 1:
            raise DataDirError(f"utterance {utt!r}: {spec} has {channels} channels; expected mono")
        if sample_rate is not None and rate != sample_rate:
            raise DataDirError(f"utterance {utt!r}: {spec} is sampled at {rate} Hz; expected {sample_rate} Hz")
        if num_samples == 0:
            raise DataDirError(f"utterance {utt!r}: {spec} holds no samples")


def _check_spk2gender(data_dir: Path, speakers: List[str]) -> None:
    """``spk2gender``, when present, gives ``m`` or ``f`` for exactly the speakers of ``utt2spk``."""
    path = data_dir / "spk2gender"
    genders = read_kaldi_map(path, check_sorted=True, layout=LAYOUTS["spk2gender"])
    for spk, gender in genders.items():
        if spk not in speakers:
            raise DataDirError(f"{path}: speaker {spk!r} is not in utt2spk")
        if gender not in ("m", "f"):
            raise DataDirError(f"{path}: speaker {spk!r}: gender {gender!r}, expected m or f")
    for spk in speakers:
        if spk not in genders:
            raise DataDirError(f"{path}: speaker {spk!r} of utt2spk is missing")


def _check_feats(
    data_dir: Path,
    feats: Dict[str, str],
    utt2num_frames: Optional[Dict[str, str]],
    feat_dim: int,
) -> None:
    """Each ``feats.scp`` matrix loads, is ``(frames, feat_dim)``, finite, and agrees with ``utt2num_frames``."""
    import kaldiio
    import numpy as np

    for utt, spec in feats.items():
        try:
            matrix = kaldiio.load_mat(spec)
        except (OSError, ValueError, KeyError) as e:
            raise DataDirError(f"{data_dir}/feats.scp: utterance {utt!r}: cannot load {spec}: {e}") from e
        if matrix.ndim != 2 or matrix.shape[1] != feat_dim:
            raise DataDirError(
                f"{data_dir}/feats.scp: utterance {utt!r}: shape {matrix.shape}, expected (frames, {feat_dim})"
            )
        if not np.isfinite(matrix).all():
            raise DataDirError(f"{data_dir}/feats.scp: utterance {utt!r}: non-finite values")
        if utt2num_frames is not None and int(utt2num_frames[utt]) != matrix.shape[0]:
            raise DataDirError(
                f"{data_dir}/utt2num_frames: utterance {utt!r}: {utt2num_frames[utt]} frames "
                f"but feats.scp holds {matrix.shape[0]}"
            )
