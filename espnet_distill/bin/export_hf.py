"""Write a wav_cnn student as a Hugging Face ``transformers`` model directory.

A distillation exp dir (``student.yaml``, ``student.pth``) becomes a
``HubertModel``; a fine-tuning exp dir (``config.yaml`` and its model files) a
``HubertForCTC`` with ``vocab.json`` and, for char token lists, a
``Wav2Vec2Processor``.  The Fbank front-end cannot be expressed and is refused.

    python -m espnet_distill.bin.export_hf exp/asr_deep_thin_reg_kl_train hf/deep_thin_reg_kl

    from transformers import HubertForCTC, Wav2Vec2Processor
    model = HubertForCTC.from_pretrained("hf/deep_thin_reg_kl")
    processor = Wav2Vec2Processor.from_pretrained("hf/deep_thin_reg_kl")
"""

import argparse
import logging
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

from espnet_distill.export.huggingface import ExportError, export_hf
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import check_output_dir, run
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="a distillation or fine-tuning exp dir")
    parser.add_argument("out_dir", type=Path, help="the model directory to write (replaced if it exists)")
    parser.add_argument(
        "--checkpoint", default=None, help="fine-tuning model file in exp_dir (default: the averaged best)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    check_output_dir(args.out_dir, "model directory")
    args.out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out_dir.name}.", dir=args.out_dir.parent))
    try:
        export_hf(args.exp_dir, staging, args.checkpoint)
        if args.out_dir.exists():
            shutil.rmtree(args.out_dir)
        staging.rename(args.out_dir)  # whole or not at all
    except (ExportError, CheckpointError, FileNotFoundError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    run(main)
