"""Load a teacher as the distillation stages will, run it on one utterance, describe it.

Writes ``<out_dir>/teacher.yaml`` (``teacher`` and ``teacher_conf``, for the
later stages) and ``teacher_info.json`` (layers, width, parameters, codewords).
The recipe reruns this only when the checkpoint or the options changed
(``espnet_distill.recipe.stage_stamp``), and redoes the later stages when the
content of ``teacher.yaml`` or of the checkpoint changed.

Example:
    python -m espnet_distill.recipe.check_teacher --teacher fairseq \\
        --path /models/hubert_base_ls960.pt --data_dir data/dev --out_dir exp/teacher
"""

import argparse
import json
import logging
from pathlib import Path
from typing import List, Optional

import torch

from espnet_distill.data.audio import AudioError, read_audio
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp
from espnet_distill.files.teacher_spec import write_spec
from espnet_distill.teacher import LOADERS, CheckpointError, load_teacher
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import str2bool
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", choices=sorted(LOADERS), required=True)
    parser.add_argument("--path", required=True, help="checkpoint file (or Hugging Face directory)")
    parser.add_argument("--trust_checkpoint", type=str2bool, default=False)
    parser.add_argument(
        "--sha256",
        default="",
        help="the checkpoint file's expected SHA-256 (kept in teacher.yaml: checked at every load)",
    )
    parser.add_argument("--data_dir", type=Path, required=True, help="its first utterance is run")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.out_dir / "check_teacher.log")
    conf = {"path": args.path}
    if args.trust_checkpoint:
        conf["trust_checkpoint"] = True
    if args.sha256:
        conf["sha256"] = args.sha256
    try:
        teacher = load_teacher(args.teacher, **conf)
        utt, spec = next(iter(read_wav_scp(args.data_dir / "wav.scp").items()))
        samples, _ = read_audio(utt, spec)
        output = teacher(torch.from_numpy(samples)[None])
    except (CheckpointError, AudioError, DataDirError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    info = {
        "format": args.teacher,
        "path": args.path,
        "num_layers": teacher.num_layers,
        "hidden_size": teacher.hidden_size,
        "params": sum(p.numel() for p in teacher.model.parameters()),
        "num_codewords": None if output.codeword_logits is None else int(output.codeword_logits.shape[-1]),
        "frames_of_first_utterance": int(output.lengths[0]),
    }
    with atomic_write(args.out_dir / "teacher_info.json") as f:
        json.dump(info, f, indent=2)
    write_spec(args.out_dir, args.teacher, conf)
    logger.info("teacher: %s", info)


if __name__ == "__main__":
    run(main)
