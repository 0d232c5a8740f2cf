"""Load an exported student as fine-tuning will, run it on one utterance, report its distillation.

Logs the student's parameters, final dev losses per term and training
throughput (from ``distill_summary.json``).

Example:
    python -m espnet_distill.recipe.check_student --data_dir data/dev exp/distill_deep_thin_reg_kl
"""

import argparse
import json
import logging
from pathlib import Path
from typing import List, Optional

import torch

from espnet_distill.data.audio import AudioError, read_audio
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp
from espnet_distill.distill.export import load_student
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="its first utterance is run")
    parser.add_argument("exp_dir", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        frontend, encoder, description = load_student(args.exp_dir)
        utt, spec = next(iter(read_wav_scp(args.data_dir / "wav.scp").items()))
        samples, _ = read_audio(utt, spec)
        wave = torch.from_numpy(samples)[None]
        with torch.no_grad():
            feats, lengths = frontend(wave, torch.tensor([wave.shape[1]]))
            output, _, _ = encoder(feats, lengths)
    except (CheckpointError, AudioError, DataDirError, ValueError, OSError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    if not torch.isfinite(output).all():
        logger.error("%s: the student's output on %s is not finite", args.exp_dir, utt)
        raise SystemExit(1)
    summary = json.loads((args.exp_dir / "distill_summary.json").read_text(encoding="utf-8"))
    valid = summary["final"].get("valid", {})
    terms = {
        k: round(v, 4)
        for k, v in valid.items()
        if k.startswith(("l1_", "cos_")) or k in ("regression", "discriminative", "loss")
    }
    logger.info(
        "%s: %s + %s, %d parameters; %s -> %s frames of %d dims; final dev losses %s; %.1f s of audio per second over %d steps",
        args.exp_dir,
        description["frontend"],
        description["encoder"],
        description["params"]["total"],
        utt,
        int(lengths[0]),
        output.shape[-1],
        terms,
        summary["audio_seconds_per_second"],
        summary["train_steps"],
    )


if __name__ == "__main__":
    run(main)
