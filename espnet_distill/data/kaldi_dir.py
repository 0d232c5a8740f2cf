"""Reading and writing Kaldi data directories (``wav.scp``, ``text``, ``utt2spk`` ...).

Every file is a sorted list of ``<key> <value>`` lines.  Readers are strict:
they report the file, the line number and the key of anything malformed.
"""

from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Tuple, Union

from espnet_distill.utils.fileio import atomic_write

PathLike = Union[str, Path]


class DataDirError(ValueError):
    """A Kaldi data directory or one of its files is malformed."""


def c_sort_key(key: str) -> bytes:
    """Sort key equal to ``LC_ALL=C sort``: byte order of the UTF-8 encoding."""
    return key.encode("utf-8")


def read_lines(path: PathLike) -> List[Tuple[int, str]]:
    """Return ``(line_number, line)`` pairs of a UTF-8 text file.

    Raises :class:`DataDirError` naming the file and line for non-UTF-8 bytes.
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
        lines.append((number, line.rstrip("\r")))
    if lines and lines[-1][1] == "":
        lines.pop()
    return lines


def read_kaldi_map(
    path: PathLike, allow_empty_value: bool = False, check_sorted: bool = False
) -> "OrderedDict[str, str]":
    """Read a ``<key> <value>`` file into an ordered dict.

    Duplicate keys, empty lines and (unless allowed) empty values are errors;
    with ``check_sorted`` the keys must be in ``LC_ALL=C`` order.
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
        if not value and not allow_empty_value:
            raise DataDirError(f"{path}:{number}: utterance/key {key!r} has an empty value")
        if key in table:
            raise DataDirError(f"{path}:{number}: duplicate id {key!r}")
        if check_sorted and previous is not None and c_sort_key(key) < c_sort_key(previous):
            raise DataDirError(f"{path}:{number}: {key!r} comes after {previous!r}: not sorted (use LC_ALL=C sort)")
        table[key] = value
        previous = key
    return table


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
