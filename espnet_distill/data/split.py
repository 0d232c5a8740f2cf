"""Splitting scp files into contiguous parts for parallel jobs."""

from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Union

from espnet_distill.data.kaldi_dir import DataDirError, read_kaldi_map, read_lines

PathLike = Union[str, Path]


def split_evenly(items: Sequence, num_parts: int) -> List[List]:
    """Contiguous parts whose sizes differ by at most one."""
    if num_parts < 1:
        raise ValueError(f"num_parts must be positive, got {num_parts}")
    base, extra = divmod(len(items), num_parts)
    parts, start = [], 0
    for i in range(num_parts):
        end = start + base + (1 if i < extra else 0)
        parts.append(list(items[start:end]))
        start = end
    return parts


def split_by_speaker(keys: Sequence[str], utt2spk: Mapping[str, str], num_parts: int) -> List[List[str]]:
    """Contiguous parts that keep each speaker's utterances together.

    Speakers are assigned in order, each part taking speakers until it reaches
    its share of the remaining utterances.
    """
    groups: List[List[str]] = []
    for key in keys:
        if key not in utt2spk:
            raise DataDirError(f"utterance {key!r} is not in utt2spk")
        if groups and utt2spk[groups[-1][0]] == utt2spk[key]:
            groups[-1].append(key)
        else:
            groups.append([key])
    if len(groups) < num_parts:
        raise DataDirError(f"cannot split {len(groups)} speakers into {num_parts} parts")
    parts: List[List[str]] = []
    remaining = len(keys)
    index = 0
    for part in range(num_parts):
        parts_left = num_parts - part
        share = remaining / parts_left
        current: List[str] = []
        # keep at least one speaker for every part still to fill
        while index < len(groups) and len(groups) - index > parts_left - 1:
            if current and len(current) + len(groups[index]) / 2 > share:
                break
            current.extend(groups[index])
            index += 1
        remaining -= len(current)
        parts.append(current)
    parts[-1].extend(key for group in groups[index:] for key in group)
    return parts


def split_scp(scp: PathLike, outputs: Sequence[PathLike], utt2spk: Optional[PathLike] = None) -> None:
    """Split ``scp`` into ``outputs`` (lines unchanged), optionally by speaker."""
    lines = [line for _, line in read_lines(scp)]
    keys = list(read_kaldi_map(scp))  # checks duplicates and empty values
    if len(keys) < len(outputs):
        raise DataDirError(f"{scp}: cannot split {len(keys)} lines into {len(outputs)} parts")
    if utt2spk is not None:
        key_parts = split_by_speaker(keys, read_kaldi_map(utt2spk), len(outputs))
        sizes = [len(p) for p in key_parts]
    else:
        sizes = [len(p) for p in split_evenly(keys, len(outputs))]
    start = 0
    for output, size in zip(outputs, sizes):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines[start : start + size])
        start += size
