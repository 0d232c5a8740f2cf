"""HuBERT iteration-1 targets: k-means on MFCC frames, one label per 20 ms.

Fits k-means on the training set and writes Kaldi-style label files
(``<utt> <label> <label> ...``) for each data dir, plus the k-means model.

Example:
    python -m espnet_distill.bin.hubert_kmeans --num_clusters 100 \\
        --fit_data data/train --data_dirs data/train data/dev --out_dir exp/hubert_kmeans
"""

import argparse
import json
import logging
import pickle
from functools import partial
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp, write_kaldi_map
from espnet_distill.make_teacher.kmeans_labels import assign_labels, fit_kmeans, majority_rate, utterance_features
from espnet_distill.make_teacher.layer_frames import teacher_layer_features
from espnet_distill.teacher import LOADERS, load_teacher
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import parse_with_config
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit_data", type=Path, help="data dir whose frames fit k-means")
    parser.add_argument("--data_dirs", type=Path, nargs="+", default=[], help="data dirs to label")
    parser.add_argument("--out_dir", type=Path)
    parser.add_argument("--num_clusters", type=int, default=100)
    parser.add_argument("--max_frames", type=int, default=200000, help="frames sampled to fit k-means")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--teacher",
        choices=sorted(LOADERS),
        default=None,
        help="cluster a layer of this model instead of MFCC frames (its format)",
    )
    parser.add_argument("--teacher_path", type=str, default=None, help="checkpoint of --teacher")
    parser.add_argument("--layer", type=int, default=None, help="the layer of --teacher to cluster")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_with_config(get_parser(), argv)
    if args.fit_data is None or args.out_dir is None:
        raise SystemExit("hubert_kmeans: --fit_data and --out_dir are required")
    if (args.teacher is None) != (args.teacher_path is None) or (args.teacher is None) != (args.layer is None):
        raise SystemExit("hubert_kmeans: --teacher, --teacher_path and --layer go together")
    setup_logging(args.out_dir / "hubert_kmeans.log")
    try:
        if args.teacher is None:
            extract = utterance_features
        else:
            teacher = load_teacher(args.teacher, path=args.teacher_path)
            logger.info("clustering layer %d of %s %s", args.layer, args.teacher, args.teacher_path)
            extract = partial(teacher_layer_features, teacher, layer=args.layer)
        features = {d: extract(read_wav_scp(d / "wav.scp")) for d in {args.fit_data, *args.data_dirs}}
        kmeans = fit_kmeans(features[args.fit_data].values(), args.num_clusters, args.max_frames, args.seed)
        summary = {
            "num_clusters": args.num_clusters,
            "features": "mfcc" if args.teacher is None else f"{args.teacher_path} layer {args.layer}",
        }
        for data_dir in args.data_dirs:
            labels = assign_labels(kmeans, features[data_dir])
            table = {utt: " ".join(map(str, lab)) for utt, lab in labels.items()}
            write_kaldi_map(args.out_dir / data_dir.name / "labels", table)
            cluster, rate = majority_rate(labels)
            summary[data_dir.name] = {"majority_cluster": cluster, "majority_rate": rate}
            logger.info("%s: most frequent cluster %d holds %.3f of frames", data_dir, cluster, rate)
        with atomic_write(args.out_dir / "kmeans.pkl", "wb") as f:
            pickle.dump(kmeans, f)
        with atomic_write(args.out_dir / "summary.json") as f:
            json.dump(summary, f, indent=2)
    except (AudioError, DataDirError, CheckpointError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
