"""A phoneme copy of a labelled data dir: the same audio and speakers, ``text`` in phones.

``<out_dir>`` gets the data dir's ``wav.scp``, ``utt2spk``, ``spk2utt`` (and ``utt2dur``,
``spk2gender`` where present) and a ``text`` whose transcripts are espeak-ng's phones of the
original ones, space-separated (:mod:`espnet_distill.text.phonemes`: ``en-us`` IPA, stress marks
stripped), or with ``--lexicon`` the phones of a pronunciation lexicon (LibriSpeech's, for SUPERB's
phoneme recognition: ARPAbet, stress digits stripped).  Phone recognition then trains, decodes and scores (sclite on phone tokens: the
"WER" of ``score_wer`` is the phone error rate) through the same steps as ASR.  Each file is
written atomically, ``text`` last; other files of ``<out_dir>`` (the recipe's stamp) are kept.

Example:
    python -m espnet_distill.recipe.phoneme_data data/dev data/dev_phn
    python -m espnet_distill.recipe.phoneme_data --lexicon downloads/librispeech-lexicon.txt \\
        data/test_clean data/test_clean_phn
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.kaldi_dir import DataDirError, read_kaldi_map, write_kaldi_map
from espnet_distill.text.phonemes import (
    PhonemizerError,
    espeak_version,
    lexicon_phonemize,
    phone_set,
    phonemize,
    read_lexicon,
)
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)

COPIED = ("wav.scp", "utt2spk", "spk2utt", "utt2dur", "spk2gender")


def write_phoneme_dir(data_dir: Path, out_dir: Path, lexicon: Optional[Path] = None) -> int:
    """Write ``out_dir`` from ``data_dir`` (see the module's docstring); returns the number of phones used."""
    if (data_dir / "segments").exists():
        raise DataDirError(f"{data_dir}: a segments file is not supported (the recipes read whole files)")
    texts = read_kaldi_map(data_dir / "text")
    phones = lexicon_phonemize(texts, read_lexicon(lexicon)) if lexicon else phonemize(texts)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:  # each file replaced whole; text last, so a dir with a text is complete
        if (data_dir / name).is_file():
            with atomic_write(out_dir / name) as f:
                f.write((data_dir / name).read_text(encoding="utf-8"))
        elif (out_dir / name).exists():
            (out_dir / name).unlink()
    with atomic_write(out_dir / "phonemizer") as f:
        f.write(f"lexicon {lexicon}\n" if lexicon else f"{espeak_version()}, voice en-us, stress marks stripped\n")
    write_kaldi_map(out_dir / "text", {utt: " ".join(phones[utt]) for utt in texts})
    return len(phone_set(phones))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="a labelled data dir (text, wav.scp, utt2spk, spk2utt)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--lexicon", type=Path, default=None, help="a pronunciation lexicon (default: espeak-ng)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        count = write_phoneme_dir(args.data_dir, args.out_dir, args.lexicon)
    except (DataDirError, PhonemizerError, OSError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("wrote %s (%d phones)", args.out_dir, count)


if __name__ == "__main__":
    run(main)
