"""Phoneme transcripts of English text through espeak-ng's phonemizer: the mini corpus's phone set.

The phone set is espeak-ng's IPA phonemes of its ``en-us`` voice (``espeak-ng -q --ipa --sep=" "``)
with the stress marks (ˈ ˌ) removed and the word boundaries dropped: one phone per symbol group
espeak-ng separates (``aɪ``, ``ɔːɹ`` and ``dʒ`` are single phones).  Each utterance is phonemized as
a whole, so that a word is pronounced in its context ("a" as ``ə``, not as the letter's name).
Every utterance gets the ``en-us`` transcription whatever voice or accent spoke it, as LibriSpeech's
lexicon gives every reader the same pronunciation; for the corpus's espeak-ng voices it is what was
synthesized, up to their accent.  The transcription depends only on the text and the espeak-ng
version (:func:`espeak_version`).
"""

import logging
import shutil
import subprocess
from typing import Dict, List, Mapping, Sequence

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
