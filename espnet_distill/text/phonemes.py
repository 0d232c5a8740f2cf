"""Phoneme transcripts of English text through espeak-ng's phonemizer: the mini corpus's phone set.

The phone set is espeak-ng's IPA phonemes of its ``en-us`` voice (``espeak-ng -q --ipa --sep=" "``)
with the stress marks (ˈ ˌ) removed and the word boundaries dropped: one phone per symbol group
espeak-ng separates (``aɪ``, ``ɔːɹ`` and ``dʒ`` are single phones).  Each utterance is phonemized as
a whole, so that a word is pronounced in its context ("a" as ``ə``, not as the letter's name).
Every utterance gets the ``en-us`` transcription whatever voice or accent spoke it, as LibriSpeech's
lexicon gives every reader the same pronunciation; for the corpus's espeak-ng voices it is what was
synthesized, up to their accent.  The transcription depends only on the text and the espeak-ng
version (:func:`espeak_version`).

For real speech (LibriSpeech, as SUPERB), phones come from a pronunciation lexicon instead
(:func:`read_lexicon`, :func:`lexicon_phonemize`): ``WORD PH1 PH2 ...`` lines, the first
pronunciation of a word kept, ARPAbet stress digits stripped (``AH0`` -> ``AH``).
"""

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Union

logger = logging.getLogger(__name__)

VOICE = "en-us"
STRESS_MARKS = "ˈˌ"
_STRIP_STRESS = str.maketrans("", "", STRESS_MARKS)


class PhonemizerError(RuntimeError):
    """espeak-ng is missing or gave no phonemes for a text."""


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise PhonemizerError("espeak-ng is not installed (Debian: apt-get install espeak-ng; tools/install.sh does)")
    return path


def espeak_version() -> str:
    """espeak-ng's version line (``eSpeak NG text-to-speech: 1.51 ...``), part of what a transcript depends on."""
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("  Data at:")[0].strip()


def _run_espeak(lines: Sequence[str], voice: str) -> List[str]:
    """espeak-ng's IPA output for ``lines`` (one text a line), one output line per non-empty clause."""
    done = subprocess.run(
        [_espeak(), "-q", "--ipa", "--sep= ", "-v", voice],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PhonemizerError(f"espeak-ng -v {voice} failed ({done.returncode}): {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def phones_of_line(line: str) -> List[str]:
    """The phones of one line of espeak-ng's ``--ipa --sep=" "`` output, stress marks removed."""
    return [p for p in line.translate(_STRIP_STRESS).split() if p]


def phonemize(texts: Mapping[str, str], voice: str = VOICE) -> Dict[str, List[str]]:
    """Utterance id -> its phones, for each (upper- or lower-case) transcript of ``texts``.

    One espeak-ng run serves all utterances when it returns one line per utterance; otherwise (a
    text it splits into clauses) each utterance is phonemized alone.  A transcript without phones
    is an error naming the utterance.
    """
    utts = list(texts)
    lines = [" ".join(texts[utt].lower().split()) for utt in utts]
    if any(not line for line in lines):
        raise PhonemizerError(f"utterance {utts[lines.index('')]!r} has an empty transcript")
    out = _run_espeak(lines, voice)
    if len(out) != len(lines):
        logger.info("espeak-ng split some texts into clauses: phonemizing %d utterances one by one", len(lines))
        out = [" ".join(_run_espeak([line], voice)) for line in lines]
    phones = {}
    for utt, line in zip(utts, out):
        phones[utt] = phones_of_line(line)
        if not phones[utt]:
            raise PhonemizerError(f"utterance {utt!r}: espeak-ng gave no phonemes for {texts[utt]!r}")
    return phones


def phone_set(transcripts: Mapping[str, Sequence[str]]) -> List[str]:
    """The sorted phones that occur in ``transcripts``."""
    return sorted({p for phones in transcripts.values() for p in phones})


_STRESS_DIGIT = re.compile(r"(?<=[A-Za-z])[012]$")


def read_lexicon(path: Union[str, Path]) -> Dict[str, List[str]]:
    """Word (upper case) -> its first pronunciation in ``path``, stress digits stripped."""
    path = Path(path)
    if not path.is_file():
        raise PhonemizerError(
            f"{path}: no such lexicon (LibriSpeech's: librispeech-lexicon.txt of https://www.openslr.org/11; "
            "put it there, or pass no lexicon to phonemize with espeak-ng)"
        )
    lexicon: Dict[str, List[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise PhonemizerError(f"{path}:{number}: a word without phones: {line!r}")
        lexicon.setdefault(fields[0].upper(), [_STRESS_DIGIT.sub("", p) for p in fields[1:]])
    return lexicon


def lexicon_phonemize(texts: Mapping[str, str], lexicon: Mapping[str, List[str]]) -> Dict[str, List[str]]:
    """Utterance id -> the phones of its words in ``lexicon``; a word not in it is an error naming both."""
    phones = {}
    for utt, text in texts.items():
        words = text.upper().split()
        if not words:
            raise PhonemizerError(f"utterance {utt!r} has an empty transcript")
        missing = [w for w in words if w not in lexicon]
        if missing:
            raise PhonemizerError(f"utterance {utt!r}: {', '.join(sorted(set(missing)))} not in the lexicon")
        phones[utt] = [p for w in words for p in lexicon[w]]
    return phones
