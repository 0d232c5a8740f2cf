"""Merge the outputs of ``compute_fbank`` jobs into a Kaldi data directory.

Writes ``feats.scp`` and ``utt2num_frames`` into the data dir, and the global
CMVN statistics as ``feats_stats.npz`` (ESPnet's ``GlobalMVN`` format) and
``cmvn.ark`` (Kaldi's global-stats matrix).

Example:
    python -m espnet_distill.recipe.merge_feats --data_dir data/train \\
        --prefix fbank/train/raw_fbank --nj 4
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional

import kaldiio

from espnet_distill.data.kaldi_dir import DataDirError, read_kaldi_map, write_kaldi_map
from espnet_distill.features.fbank import CMVNStats
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write, remove_stale_tmp_files
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)

OUTPUTS = ("utt2num_frames", "feats_stats.npz", "cmvn.ark", "feats.scp")


def merge(data_dir: Path, prefix: Path, nj: int) -> int:
    """Merge jobs ``1..nj`` of ``prefix``; return the number of utterances."""
    feats: Dict[str, str] = {}
    frames: Dict[str, str] = {}
    stats: Optional[CMVNStats] = None
    for job in range(1, nj + 1):
        job_prefix = f"{prefix}.{job}"
        for name, table in ((".scp", feats), (".utt2num_frames", frames)):
            for utt, value in read_kaldi_map(f"{job_prefix}{name}").items():
                if utt in table:
                    raise DataDirError(f"{job_prefix}{name}: utterance {utt!r} is in two jobs")
                table[utt] = value
        job_stats = CMVNStats.load_npz(f"{job_prefix}.stats.npz")
        if stats is None:
            stats = job_stats
        else:
            stats.merge(job_stats)
    wanted = read_kaldi_map(data_dir / "utt2spk")
    missing = [u for u in wanted if u not in feats]
    if missing:
        raise DataDirError(f"{prefix}.*.scp: no features for utterance {missing[0]!r}")
    for name in OUTPUTS:  # temporary files of a merge that was killed
        remove_stale_tmp_files(data_dir / name)
    write_kaldi_map(data_dir / "utt2num_frames", frames)
    with atomic_write(data_dir / "feats_stats.npz", "wb") as f:
        stats.save_npz(f)
    with atomic_write(data_dir / "cmvn.ark", "wb") as f:
        kaldiio.save_mat(f, stats.kaldi_matrix())
    # feats.scp last: its presence marks the features as complete.
    write_kaldi_map(data_dir / "feats.scp", feats)
    return len(feats)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--prefix", type=Path, required=True, help="compute_fbank --out_prefix without .JOB")
    parser.add_argument("--nj", type=int, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        count = merge(args.data_dir, args.prefix, args.nj)
    except DataDirError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("%s: features of %d utterances merged", args.data_dir, count)


if __name__ == "__main__":
    run(main)
