"""Reading and writing Kaldi data directories (``wav.scp``, ``text``, ``utt2spk`` ...).

Every file is a sorted list of ``<key> <value>`` lines.  Readers are strict:
they report the file, the line number and the key of anything malformed.
"""

import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from espnet_distill.utils.fileio import atomic_write

PathLike = Union[str, Path]
BOM = "\ufeff"
KALDI_SEPARATORS = " \t"  # Kaldi splits lines on these only; Python's str.split() on any Unicode whitespace
SEGMENTS_UNSUPPORTED = (
    "segments files are not supported (training reads wav.scp through ESPnet's sound reader, which reads "
    "whole files): cut each segment into a file of its own, e.g. `sox in.wav out.wav trim <start> =<end>`, "
    "list those files in wav.scp under the segment ids and remove the segments file"
)


class DataDirError(ValueError):
    """A Kaldi data directory or one of its files is malformed."""


def c_sort_key(key: str) -> bytes:
    """Sort key equal to ``LC_ALL=C sort``: byte order of the UTF-8 encoding."""
    return key.encode("utf-8")


def read_lines(path: PathLike) -> List[Tuple[int, str]]:
    """Return ``(line_number, line)`` pairs of a UTF-8 text file.

    Raises :class:`DataDirError` naming the file and line for non-UTF-8 bytes
    and for a byte-order mark (which would otherwise become part of the first id).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    raw = path.read_bytes()
    lines = []
    for number, raw_line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as e:
            key = raw_line.split(maxsplit=1)[0].decode("utf-8", "replace") if raw_line.strip() else ""
            raise DataDirError(
                f"{path}:{number}: utterance {key!r}: not valid UTF-8 ({e.reason} at byte {e.start})"
            ) from e
        if line.startswith(BOM):
            raise DataDirError(f"{path}:{number}: starts with a UTF-8 byte-order mark; remove it")
        lines.append((number, line.rstrip("\r")))
    if lines and lines[-1][1] == "":
        lines.pop()
    return lines


def _odd_whitespace(text: str) -> str:
    """The whitespace other than spaces and tabs in ``text`` (invisible when printed), as ``U+00A0, ...``."""
    return ", ".join(f"U+{ord(c):04X}" for c in sorted({c for c in text if c.isspace() and c not in KALDI_SEPARATORS}))


def _check_id(path: Path, number: int, line: str, key: str) -> None:
    """An id is what Kaldi splits off too (at spaces and tabs only) and holds no control characters."""
    kaldi_key = line.lstrip(KALDI_SEPARATORS).replace("\t", " ").split(" ", 1)[0]
    if kaldi_key != key:
        raise DataDirError(
            f"{path}:{number}: id {kaldi_key!r} contains the whitespace character {_odd_whitespace(kaldi_key)}; "
            "ids cannot contain whitespace"
        )
    control = [c for c in key if unicodedata.category(c) == "Cc"]
    if control:
        raise DataDirError(
            f"{path}:{number}: id {key!r} contains the control character U+{ord(control[0]):04X}; "
            "ids are printable and cannot contain whitespace"
        )


def read_kaldi_map(
    path: PathLike, allow_empty_value: bool = False, check_sorted: bool = False, layout: Optional[str] = None
) -> "OrderedDict[str, str]":
    """Read a ``<key> <value>`` file into an ordered dict.

    Duplicate keys, empty lines, ids with whitespace or control characters and
    (unless allowed) empty values are errors; with ``check_sorted`` the keys
    must be in ``LC_ALL=C`` order.  ``layout`` (e.g. ``"<utt> <spk>"``) marks a
    single-value file: a line with more than two fields is an error quoting it.
    """
    path = Path(path)
    table: "OrderedDict[str, str]" = OrderedDict()
    previous = None
    for number, line in read_lines(path):
        if not line.strip():
            raise DataDirError(f"{path}:{number}: empty line")
        parts = line.split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        _check_id(path, number, line, key)
        if not value and not allow_empty_value:
            raise DataDirError(f"{path}:{number}: utterance/key {key!r} has an empty value")
        if layout is not None and len(value.split()) > 1:
            odd = _odd_whitespace(line)
            raise DataDirError(
                f"{path}:{number}: {key!r}: the line has {1 + len(value.split())} fields, expected {layout!r}"
                + (f" (it contains the whitespace character {odd})" if odd else "")
                + "; ids cannot contain whitespace"
            )
        if key in table:
            raise DataDirError(f"{path}:{number}: duplicate id {key!r}")
        if check_sorted and previous is not None and c_sort_key(key) < c_sort_key(previous):
            raise DataDirError(f"{path}:{number}: {key!r} comes after {previous!r}: not sorted (use LC_ALL=C sort)")
        table[key] = value
        previous = key
    return table


def check_no_segments(wav_scp: PathLike) -> None:
    """Refuse a ``wav.scp`` (or one split of it) with a ``segments`` file beside it."""
    segments = Path(wav_scp).parent / "segments"
    if segments.exists():
        raise DataDirError(f"{segments}: {SEGMENTS_UNSUPPORTED}")


def read_wav_scp(wav_scp: PathLike, **kwargs) -> "OrderedDict[str, str]":
    """Read a data dir's ``wav.scp`` (or one split of it), refusing a ``segments`` file beside it.

    Every reader of a data dir's audio goes through here: ESPnet's ``sound``
    reader, which training uses, reads whole files, so segments would be
    silently ignored.  ``kwargs`` go to :func:`read_kaldi_map`.
    """
    check_no_segments(wav_scp)
    return read_kaldi_map(wav_scp, **kwargs)


def write_kaldi_map(path: PathLike, table: Mapping[str, str]) -> None:
    """Write ``<key> <value>`` lines sorted in ``LC_ALL=C`` order, atomically."""
    with atomic_write(path) as f:
        for key in sorted(table, key=c_sort_key):
            f.write(f"{key} {table[key]}\n")


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> "OrderedDict[str, List[str]]":
    """Invert ``utt2spk``; utterances keep their sorted order within a speaker."""
    spk2utt: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk, key=c_sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return OrderedDict((spk, spk2utt[spk]) for spk in sorted(spk2utt, key=c_sort_key))


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Iterable[str]]) -> "OrderedDict[str, str]":
    """Invert ``spk2utt``; an utterance listed under two speakers is an error."""
    utt2spk: Dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in utt2spk:
                raise DataDirError(f"utterance {utt!r} belongs to {utt2spk[utt]!r} and {spk!r}")
            utt2spk[utt] = spk
    return OrderedDict((utt, utt2spk[utt]) for utt in sorted(utt2spk, key=c_sort_key))


def write_spk2utt(path: PathLike, spk2utt: Mapping[str, List[str]]) -> None:
    """Write ``spk2utt`` with space-separated utterance lists."""
    write_kaldi_map(path, {spk: " ".join(utts) for spk, utts in spk2utt.items()})


def read_spk2utt(path: PathLike) -> "OrderedDict[str, List[str]]":
    """Read ``spk2utt`` into lists of utterances."""
    return OrderedDict((k, v.split()) for k, v in read_kaldi_map(path).items())
