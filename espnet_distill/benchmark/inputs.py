"""What both benchmarks are given: the ``--model NAME=PATH`` option and the utterances of a data dir."""

import argparse
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_wav_scp

SAMPLE_RATE = 16000


def model_arg(value: str) -> Tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def read_utterances(data_dir: Path, max_utts: Optional[int]) -> List[torch.Tensor]:
    waves = []
    for utt, spec in read_wav_scp(data_dir / "wav.scp").items():
        samples, _ = read_audio(utt, spec, expected_rate=SAMPLE_RATE)
        waves.append(torch.from_numpy(samples)[None])
        if max_utts is not None and len(waves) >= max_utts:
            break
    if not waves:
        raise ValueError(f"{data_dir}/wav.scp lists no utterances")
    return waves
