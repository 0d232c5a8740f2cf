"""Write ESPnet's ``speech_shape`` file (``<utt> <samples>``) of a data dir, checking its audio.

Every entry of ``wav.scp`` must be a readable mono file at the expected rate;
the first bad one stops the run with its utterance id and path, and nothing
is written.

Example:
    python -m espnet_distill.recipe.speech_shape data/train exp/distill_stats/train/speech_shape
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError, audio_info
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write, remove_stale_tmp_files
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def write_speech_shape(data_dir: Path, out: Path, sample_rate: int = 16000) -> int:
    """Write ``out`` for ``data_dir/wav.scp``; returns the number of utterances.

    A ``segments`` file in ``data_dir`` is refused (training reads whole files).
    """
    lines = []
    for utt, spec in read_wav_scp(data_dir / "wav.scp").items():
        if spec.rstrip().endswith("|"):
            raise AudioError(
                f"utterance {utt!r}: piped wav.scp entries are not supported for training; dump them to files"
            )
        frames, rate, channels = audio_info(utt, spec)
        if rate != sample_rate:
            raise AudioError(f"utterance {utt!r}: {spec} is {rate} Hz, expected {sample_rate} Hz")
        if channels != 1:
            raise AudioError(f"utterance {utt!r}: {spec} has {channels} channels, expected mono")
        if frames == 0:
            raise AudioError(f"utterance {utt!r}: {spec} holds no samples")
        lines.append(f"{utt} {frames}\n")
    remove_stale_tmp_files(out)  # of a run that was killed
    with atomic_write(out) as f:
        f.writelines(lines)
    return len(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        count = write_speech_shape(args.data_dir, args.out, args.sample_rate)
    except (AudioError, DataDirError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("wrote %s (%d utterances)", args.out, count)


if __name__ == "__main__":
    run(main)
