"""Compute Kaldi-compatible fbank features of one ``wav.scp`` (one job of a split).

Writes ``<out_prefix>.ark`` and ``.scp`` (kaldiio), ``.utt2num_frames`` and
``.stats.npz`` (global CMVN statistics of this job).  Every file is written
under a temporary name and renamed only when the whole job succeeded, so a bad
utterance leaves nothing half-written; a rerun removes the temporary files of
a run that was killed.  Options that cannot give features (``--num_mel_bins 0``,
a negative frame length ...) are usage errors, and a ``segments`` file beside
the ``wav.scp`` is refused.

Example:
    python -m espnet_distill.bin.compute_fbank --config conf/fbank.yaml \\
        --wav_scp data/train/split4/wav.1.scp --out_prefix fbank/train/raw_fbank.1
"""

import argparse
import contextlib
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import List, Optional

import kaldiio
import yaml
from tqdm import tqdm

from espnet_distill.data.audio import AudioError, read_audio
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp
from espnet_distill.features.fbank import (
    CMVNStats,
    FbankOptions,
    FbankOptionsError,
    check_options,
    compute_fbank,
    num_frames,
)
from espnet_distill.utils.cli import UserError, run
from espnet_distill.utils.config import ConfigError, parse_with_config, str2bool
from espnet_distill.utils.fileio import remove_stale_tmp_files, tmp_path_for
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".ark", ".scp", ".utt2num_frames", ".stats.npz")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_scp", type=Path, help="input wav.scp (or one split of it)")
    parser.add_argument("--out_prefix", type=Path, help="output path without suffix")
    defaults = FbankOptions()
    for field in fields(FbankOptions):
        value = getattr(defaults, field.name)
        type_ = str2bool if isinstance(value, bool) else type(value)
        parser.add_argument(f"--{field.name}", type=type_, default=value)
    parser.add_argument("--log_level", default="INFO")
    parser.add_argument("--config", type=Path, help="YAML file of default options")
    return parser


def compute_job(wav_scp: Path, out_prefix: Path, opts: FbankOptions) -> int:
    """Compute and write the features of every utterance of ``wav_scp``.

    Returns the number of utterances.  Raises :class:`AudioError` or
    :class:`DataDirError` naming the bad utterance; then no output exists.
    """
    check_options(opts)
    entries = read_wav_scp(wav_scp)
    if not entries:
        raise DataDirError(f"{wav_scp}: no utterances")
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    final = {s: Path(f"{out_prefix}{s}") for s in OUTPUT_SUFFIXES}
    tmp = {s: tmp_path_for(p) for s, p in final.items()}
    for path in final.values():  # never leave a stale output of an earlier run, nor its temporary files
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        remove_stale_tmp_files(path)
    stats = CMVNStats(opts.num_mel_bins)
    try:
        with (
            kaldiio.WriteHelper(f"ark,scp:{tmp['.ark']},{tmp['.scp']}") as writer,
            open(tmp[".utt2num_frames"], "w", encoding="utf-8") as frames_out,
        ):
            for utt, spec in tqdm(entries.items(), desc=str(wav_scp), mininterval=10):
                samples, _ = read_audio(utt, spec, expected_rate=opts.sample_rate)
                if num_frames(samples.shape[0], opts) == 0:
                    raise AudioError(
                        f"utterance {utt!r}: {spec} is too short for one "
                        f"{opts.frame_length} ms frame ({samples.shape[0]} samples)"
                    )
                feats = compute_fbank(samples, opts, seed_key=utt).numpy()
                writer(utt, feats)
                frames_out.write(f"{utt} {feats.shape[0]}\n")
                stats.add(feats)
        with open(tmp[".stats.npz"], "wb") as f:
            stats.save_npz(f)
        # The scp was written pointing at the temporary ark: point it at the final one.
        scp_lines = tmp[".scp"].read_text(encoding="utf-8").splitlines()
        with open(tmp[".scp"], "w", encoding="utf-8") as f:
            for line in scp_lines:
                utt, location = line.split(maxsplit=1)
                offset = location.rsplit(":", 1)[1]
                f.write(f"{utt} {final['.ark']}:{offset}\n")
        # The ark is renamed first, so that an scp never points at a missing ark.
        for suffix in OUTPUT_SUFFIXES:
            os.replace(tmp[suffix], final[suffix])
    except BaseException:
        for path in tmp.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    return len(entries)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the options; a missing or malformed ``--config`` file and a nonsensical value are one-line errors."""
    parser = get_parser()
    config = parser.parse_known_args(argv)[0].config
    if config is not None and not config.is_file():
        raise UserError(f"{config}: no such --config file")
    try:
        args = parse_with_config(parser, argv)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config}: not valid YAML: {' '.join(str(e).split())}") from e
    try:
        check_options(FbankOptions(**{f.name: getattr(args, f.name) for f in fields(FbankOptions)}))
    except FbankOptionsError as e:
        parser.error(f"{e}" + (f" (options from {config} and the command line)" if config is not None else ""))
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    setup_logging(level=args.log_level)
    if args.wav_scp is None or args.out_prefix is None:
        raise SystemExit("compute_fbank: --wav_scp and --out_prefix are required")
    opts = FbankOptions(**{f.name: getattr(args, f.name) for f in fields(FbankOptions)})
    logger.info("fbank options: %s", opts)
    try:
        count = compute_job(args.wav_scp, args.out_prefix, opts)
    except (AudioError, DataDirError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("wrote features of %d utterances to %s.ark", count, args.out_prefix)


if __name__ == "__main__":
    run(main)
