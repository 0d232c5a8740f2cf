"""Merge the decoding jobs' hypotheses, score them with sclite, and record the real-time factor.

Writes ``<decode_dir>/text``, ``score_wer/``, ``score_cer/`` (ESPnet's layout)
and ``score.json`` (the Sum/Avg rows and the decoding real-time factor:
decoding seconds summed over jobs, over seconds of audio).

Example:
    python -m espnet_distill.recipe.score --data_dir data/test --decode_dir exp/asr_x/decode_ctc_greedy/test --nj 4
"""

import argparse
import json
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError, audio_info
from espnet_distill.data.kaldi_dir import DataDirError, c_sort_key, read_kaldi_map, read_wav_scp
from espnet_distill.scoring.sclite import score_dir
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def merge_hypotheses(decode_dir: Path, nj: int) -> int:
    """``logdir/output.{1..nj}/text`` into ``decode_dir/text``, sorted; returns the count."""
    lines = {}
    for n in range(1, nj + 1):
        part = decode_dir / "logdir" / f"output.{n}" / "text"
        for utt, text in read_kaldi_map(part, allow_empty_value=True).items():
            lines[utt] = text
    with atomic_write(decode_dir / "text") as f:
        f.writelines((f"{u} {lines[u]}".rstrip() + "\n") for u in sorted(lines, key=c_sort_key))
    return len(lines)


def real_time_factor(data_dir: Path, decode_dir: Path, nj: int) -> float:
    """Decoding seconds (summed over jobs, model loading excluded) per second of audio."""
    seconds = sum(
        float((decode_dir / "logdir" / f"output.{n}" / "decode_seconds").read_text()) for n in range(1, nj + 1)
    )
    audio = 0.0
    for utt, spec in read_wav_scp(data_dir / "wav.scp").items():
        try:
            frames, rate, _ = audio_info(utt, spec)
            audio += frames / rate
        except AudioError:
            continue  # skipped by the decoder; counted as deletions by the scoring
    return seconds / audio if audio else float("nan")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--decode_dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        count = merge_hypotheses(args.decode_dir, args.nj)
        scores = score_dir(args.data_dir, args.decode_dir)
        scores["rtf"] = real_time_factor(args.data_dir, args.decode_dir, args.nj)
    except (DataDirError, ValueError, RuntimeError, FileNotFoundError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    with atomic_write(args.decode_dir / "score.json") as f:
        json.dump(scores, f, indent=2)
    logger.info(
        "%s: %d utterances, WER %.1f%%, CER %.1f%%, RTF %.3f",
        args.decode_dir,
        count,
        scores["wer"]["err"],
        scores["cer"]["err"],
        scores["rtf"],
    )


if __name__ == "__main__":
    run(main)
