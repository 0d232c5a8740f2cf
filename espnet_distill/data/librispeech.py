"""Kaldi data dirs of LibriSpeech and of Libri-Light's limited-resource sets.

Both corpora share one layout: ``<subset>/<speaker>/<chapter>/`` holds the
chapter's ``<speaker>-<chapter>-<n>.flac`` files and ``<speaker>-<chapter>.trans.txt``
(one ``<utterance id> <TRANSCRIPT>`` line per utterance).  LibriSpeech's subsets
are ``LibriSpeech/{train-clean-100,...}``; Libri-Light's fine-tuning sets
(``librispeech_finetuning``) are folds of that layout: ``1h/{0..5}/{clean,other}``
(each fold 10 minutes) and ``9h/{clean,other}``; 10 h is 1 h plus 9 h.

The audio stays where it is: ``wav.scp`` names each FLAC file by its absolute
path.  As in the Kaldi and ESPnet LibriSpeech recipes, the speaker of
``utt2spk`` is ``<speaker>-<chapter>``.  Anything inconsistent (a transcript
line without its FLAC, a FLAC without a transcript line, an id that does not
match its directory, the same id twice) is an error naming the file and the
utterance, and a data dir is only written when its whole subset is consistent.
"""

import re
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Union

from espnet_distill.data.kaldi_dir import DataDirError, utt2spk_to_spk2utt, write_kaldi_map, write_spk2utt

PathLike = Union[str, Path]

LIBRISPEECH_SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
# Data dir name -> LibriSpeech subsets it joins
LIBRISPEECH_DATA_DIRS = OrderedDict(
    [
        ("train_960", ("train-clean-100", "train-clean-360", "train-other-500")),
        ("train_clean_100", ("train-clean-100",)),
        ("dev_clean", ("dev-clean",)),
        ("dev_other", ("dev-other",)),
        ("test_clean", ("test-clean",)),
        ("test_other", ("test-other",)),
    ]
)
# Data dir name -> folds of librispeech_finetuning/ it joins
LIBRILIGHT_FOLDS_1H = tuple(f"1h/{fold}/{kind}" for fold in range(6) for kind in ("clean", "other"))
LIBRILIGHT_DATA_DIRS = OrderedDict(
    [
        ("train_10h", LIBRILIGHT_FOLDS_1H + ("9h/clean", "9h/other")),
        ("train_1h", LIBRILIGHT_FOLDS_1H),
        ("train_10min", ("1h/0/clean", "1h/0/other")),
    ]
)
UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


class CorpusError(DataDirError):
    """A LibriSpeech-layout corpus is missing or inconsistent."""


def scan_chapter(chapter_dir: Path) -> "OrderedDict[str, Dict[str, str]]":
    """``{utt: {"wav": flac path, "text": transcript}}`` of one ``<speaker>/<chapter>`` dir."""
    speaker, chapter = chapter_dir.parent.name, chapter_dir.name
    trans = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    flacs = {p.stem: p for p in chapter_dir.glob("*.flac")}
    if not trans.is_file():
        if flacs:
            raise CorpusError(f"{chapter_dir}: {len(flacs)} FLAC files but no {trans.name}")
        return OrderedDict()
    utts: "OrderedDict[str, Dict[str, str]]" = OrderedDict()
    for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        utt = parts[0]
        text = parts[1].strip() if len(parts) > 1 else ""
        match = UTT_ID.match(utt)
        if not match or (match.group(1), match.group(2)) != (speaker, chapter):
            raise CorpusError(f"{trans}:{number}: utterance id {utt!r} is not {speaker}-{chapter}-<n>")
        if not text:
            raise CorpusError(f"{trans}:{number}: utterance {utt!r} has an empty transcript")
        if utt in utts:
            raise CorpusError(f"{trans}:{number}: utterance {utt!r} is listed twice")
        if utt not in flacs:
            raise CorpusError(f"{trans}:{number}: utterance {utt!r} has no audio ({chapter_dir / (utt + '.flac')})")
        utts[utt] = {"wav": str(flacs[utt].resolve()), "text": text}
    untranscribed = sorted(set(flacs) - set(utts))
    if untranscribed:
        raise CorpusError(
            f"{chapter_dir / untranscribed[0]}.flac: utterance {untranscribed[0]!r} has no line in {trans}"
        )
    return utts


def scan_subset(subset_dir: Path) -> "OrderedDict[str, Dict[str, str]]":
    """Every utterance under ``<subset_dir>/<speaker>/<chapter>/``."""
    if not subset_dir.is_dir():
        raise CorpusError(f"{subset_dir}: no such directory")
    utts: "OrderedDict[str, Dict[str, str]]" = OrderedDict()
    for chapter_dir in sorted(p for p in subset_dir.glob("*/*") if p.is_dir()):
        utts.update(scan_chapter(chapter_dir))
    if not utts:
        raise CorpusError(f"{subset_dir}: no transcribed utterances (<speaker>/<chapter>/*.trans.txt)")
    return utts


def join_subsets(subset_dirs: Sequence[Path]) -> "OrderedDict[str, Dict[str, str]]":
    """The union of subsets; an utterance in two of them is an error."""
    joined: "OrderedDict[str, Dict[str, str]]" = OrderedDict()
    origin: Dict[str, Path] = {}
    for subset_dir in subset_dirs:
        for utt, entry in scan_subset(subset_dir).items():
            if utt in joined:
                raise CorpusError(f"utterance {utt!r} is in both {origin[utt]} and {subset_dir}")
            joined[utt] = entry
            origin[utt] = subset_dir
    return joined


def write_data_dir(data_dir: PathLike, utts: Mapping[str, Mapping[str, str]]) -> int:
    """Write ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt``; return the utterance count.

    The files are written into a temporary sibling that replaces ``data_dir``
    at the end, so an interrupted run leaves no half-written data dir.
    """
    data_dir = Path(data_dir)
    tmp = data_dir.with_name(data_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    utt2spk = {utt: utt.rsplit("-", 1)[0] for utt in utts}
    write_kaldi_map(tmp / "wav.scp", {utt: e["wav"] for utt, e in utts.items()})
    write_kaldi_map(tmp / "text", {utt: e["text"] for utt, e in utts.items()})
    write_kaldi_map(tmp / "utt2spk", utt2spk)
    write_spk2utt(tmp / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    if data_dir.exists():
        shutil.rmtree(data_dir)
    tmp.rename(data_dir)
    return len(utts)


def prepare(
    data_root: PathLike,
    librispeech: PathLike = "",
    librilight: PathLike = "",
    data_dirs: Iterable[str] = (),
) -> Dict[str, int]:
    """Write the chosen data dirs (all that the given corpora have, by default).

    ``librispeech``: the directory holding ``LibriSpeech/`` (or ``LibriSpeech`` itself);
    ``librilight``: the directory holding ``librispeech_finetuning/`` (or that itself).
    """
    sources: Dict[str, List[Path]] = OrderedDict()
    if librispeech:
        root = Path(librispeech)
        root = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
        for name, subsets in LIBRISPEECH_DATA_DIRS.items():
            sources[name] = [root / s for s in subsets]
    if librilight:
        root = Path(librilight)
        root = root / "librispeech_finetuning" if (root / "librispeech_finetuning").is_dir() else root
        for name, folds in LIBRILIGHT_DATA_DIRS.items():
            sources[name] = [root / f for f in folds]
    chosen = list(data_dirs) or list(sources)
    unknown = [d for d in chosen if d not in sources]
    if unknown:
        raise CorpusError(
            f"unknown data dir {unknown[0]!r} for the corpora given; "
            f"choose from {', '.join(sources) or '(none: give --librispeech and/or --librilight)'}"
        )
    counts = {}
    for name in chosen:
        counts[name] = write_data_dir(Path(data_root) / name, join_subsets(sources[name]))
    return counts
