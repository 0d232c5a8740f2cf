"""Decode a wav.scp with a fine-tuned CTC model; writes ``<output_dir>/text``.

Example:
    python -m espnet_distill.bin.asr_inference --asr_exp exp/asr_x --wav_scp data/test/wav.scp \\
        --beam_size 10 --output_dir exp/asr_x/decode_ctc_beam10/test/logdir/output.1
    python -m espnet_distill.bin.asr_inference --asr_exp exp/asr_x --wav_scp data/test/wav.scp \
        --beam_size 10 --lm exp/lm_char --lm_weight 0.5 --output_dir exp/asr_x/decode_ctc_beam10_lm0.5/test/out

With ``--lm`` (an ``lm_train`` exp dir or a model file in one) and a
``--lm_weight`` other than 0, the beam search adds the LM's log-probability of
each hypothesis times the weight (shallow fusion); the LM must have been
trained on the ASR model's token list (else an error naming both files).
"""

import argparse
import logging
import time
from pathlib import Path
from typing import List, Optional

import torch

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError, c_sort_key, read_wav_scp
from espnet_distill.inference.decode import CTCDecoder, DecodeOptions, load_asr_model
from espnet_distill.inference.lm import load_lm
from espnet_distill.text.tokens import Tokenizer
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.cli import check_output_dir, check_output_file, run
from espnet_distill.utils.config import positive_int, str2bool
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--asr_exp", type=Path, required=True, help="the fine-tuning exp dir (config.yaml, checkpoints)"
    )
    parser.add_argument("--checkpoint", default=None, help="file in --asr_exp (default: the averaged best)")
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--beam_size", type=positive_int, default=1, help="1: greedy CTC; more: CTC prefix beam search")
    parser.add_argument("--lm", type=Path, default=None, help="an lm_train exp dir (or a model file in one)")
    parser.add_argument("--lm_weight", type=float, default=0.0, help="the LM's weight in the beam search (0: no LM)")
    parser.add_argument("--batch_size", type=positive_int, default=8)
    parser.add_argument(
        "--skip_bad_utterances",
        type=str2bool,
        default=False,
        help="decode the rest when an utterance is unreadable (empty hypothesis)",
    )
    parser.add_argument("--num_threads", type=positive_int, default=1)
    args = parser.parse_args(argv)
    if args.lm_weight != 0 and args.lm is None:
        parser.error("--lm_weight needs --lm (the LM to fuse)")
    setup_logging()
    check_output_dir(args.output_dir)
    for name in ("text", "decode_seconds"):
        check_output_file(args.output_dir / name)
    torch.set_num_threads(args.num_threads)
    try:
        model, train_args = load_asr_model(args.asr_exp, args.checkpoint)
        tokenizer = Tokenizer(train_args.token_list, train_args.token_type, train_args.bpemodel)
        lm = None
        if args.lm is not None and args.lm_weight != 0:
            lm = load_lm(args.lm, tokenizer.token_list, args.asr_exp / "config.yaml")
        options = DecodeOptions(args.beam_size, args.batch_size, args.skip_bad_utterances, args.lm_weight)
        decoder = CTCDecoder(model, tokenizer, options, lm)
        wav_scp = read_wav_scp(args.wav_scp)
        start = time.perf_counter()
        hyps = dict(decoder.decode(wav_scp))
    except (AudioError, DataDirError, CheckpointError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    seconds = time.perf_counter() - start
    with atomic_write(args.output_dir / "text") as f:
        f.writelines(f"{utt} {hyps[utt]}\n".rstrip(" \n") + "\n" for utt in sorted(hyps, key=c_sort_key))
    logger.info("decoded %d utterances in %.1f s: %s", len(hyps), seconds, args.output_dir / "text")
    with atomic_write(args.output_dir / "decode_seconds") as f:
        f.write(f"{seconds:.3f}\n")


if __name__ == "__main__":
    run(main)
