"""Export a fine-tuned model to ONNX (fp32 and int8), waveform in, CTC log-probabilities out.

Writes ``<out dir>/model.onnx``, ``model.int8.onnx`` (ONNX Runtime dynamic
quantization of the MatMul weights and, with ``--calibration_dir``, static
quantization of the convolutions), ``tokens.txt`` (and ``bpe.model``) and
``model.json`` (inputs, outputs, parity), and ``SHA256SUMS`` of these files (``sha256sum -c
SHA256SUMS`` checks them; ``transcribe`` does before use).  With ``--data_dir`` the export is
checked before it is kept: on each utterance (alone) the fp32 graph's
log-probabilities must match PyTorch's within ``--tolerance`` and its greedy
hypotheses be identical; the int8 graph's agreement and every backend's CER
(sclite, when the data dir has ``text``) are recorded in ``model.json``.

    python -m espnet_distill.bin.export_onnx exp/asr_deep_thin_reg_kl_fbank_train exp/onnx_deep_thin_reg_kl_fbank \\
        --data_dir data/test --calibration_dir data/train
"""

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError, read_wav_scp
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import check_output_dir, run
from espnet_distill.utils.config import str2bool
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="a fine-tuning exp dir (config.yaml and its model files)")
    parser.add_argument("out_dir", type=Path, help="the directory to write (replaced if it exists)")
    parser.add_argument("--checkpoint", default=None, help="model file in exp_dir (default: the averaged best)")
    parser.add_argument("--int8", type=str2bool, default=True, help="also write the int8 model")
    parser.add_argument("--data_dir", type=Path, default=None, help="a data dir (wav.scp, text) to check parity on")
    parser.add_argument("--max_utts", type=int, default=0, help="utterances of --data_dir to check (0: all)")
    parser.add_argument(
        "--tolerance", type=float, default=1e-3, help="max abs difference of the fp32 log-probabilities"
    )
    parser.add_argument(
        "--calibration_dir",
        type=Path,
        default=None,
        help="a data dir (wav.scp) whose audio sets the int8 convolutions' ranges (default: convolutions stay float)",
    )
    parser.add_argument("--calibration_utts", type=int, default=32, help="utterances of --calibration_dir to use")
    args = parser.parse_args(argv)
    setup_logging()
    check_output_dir(args.out_dir, "export directory")  # before the model is loaded and exported
    import torch

    from espnet_distill.export.onnx import export_onnx
    from espnet_distill.inference.decode import calibration_waves, load_asr_model, min_samples, read_waves

    torch.set_num_threads(1)
    try:
        model, train_args = load_asr_model(args.exp_dir, args.checkpoint)  # the only load: export_onnx takes it
        waves, reference_text, calibration = None, None, None
        if args.data_dir is not None:
            waves = read_waves(read_wav_scp(args.data_dir / "wav.scp"), min_samples(model), args.max_utts or None)
            reference_text = args.data_dir / "text" if (args.data_dir / "text").is_file() else None
        if args.calibration_dir is not None:
            calibration = calibration_waves(args.calibration_dir, args.calibration_utts, min_samples(model))
        result = export_onnx(
            args.exp_dir,
            args.out_dir,
            args.checkpoint,
            args.int8,
            waves,
            reference_text,
            args.tolerance,
            calibration,
            loaded=(model, train_args),
        )
    except (AudioError, DataDirError, CheckpointError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    if result.parity is not None:
        logger.info("parity on %s: %s", args.data_dir, json.dumps(dataclasses.asdict(result.parity)))


if __name__ == "__main__":
    run(main)
