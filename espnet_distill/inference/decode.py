"""CTC decoding of a data dir with a fine-tuned model: batched encoding, then greedy or prefix beam search.

The search is :mod:`espnet_distill.inference.ctc_search`'s (the one
``transcribe`` uses); the audio is read by
:func:`espnet_distill.inference.audio.read_utterance`.  Audio is checked before
decoding: an empty file, one shorter than the front-end's receptive field, or
one at another sample rate is an error naming the utterance, unless the caller
asks to skip bad utterances (they then get an empty hypothesis, which scoring
counts as deletions).
"""

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_distill.asr.build import load_ctc_model
from espnet_distill.asr.model import CTCASRModel
from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import read_wav_scp
from espnet_distill.inference.audio import read_utterance
from espnet_distill.inference.ctc_search import beam_ids, collapse, ctc_beam_search
from espnet_distill.text.tokens import Tokenizer
from espnet_distill.utils.checkpoint import preferred_model_file, read_training_config

logger = logging.getLogger(__name__)


def load_asr_model(exp_dir: Path, checkpoint: Optional[str] = None) -> Tuple[CTCASRModel, argparse.Namespace]:
    """The model of an ASR exp dir (its ``config.yaml``) with the weights of ``checkpoint`` (default: the averaged best).

    Loaded through :func:`espnet_distill.asr.build.load_ctc_model`: nothing pickled runs; a
    ``config.yaml`` without a token list or with an unknown key in a component's
    ``*_conf`` is an error naming it and the key; a model file whose CTC layer
    has another size than the token list, or that does not fit the config
    otherwise, is an error naming the file (and the key).
    """
    model_file = preferred_model_file(exp_dir) if checkpoint is None else exp_dir / checkpoint
    config_file = exp_dir / "config.yaml"
    model, args = load_ctc_model(read_training_config(config_file), config_file, model_file)
    return model.eval(), args


def min_samples(model: CTCASRModel) -> int:
    """The shortest input that gives one encoder frame."""
    return int(getattr(model.frontend, "receptive_field", 1))


def read_checked(utt: str, spec: str, shortest: int, sample_rate: int = 16000) -> torch.Tensor:
    """One ``wav.scp`` entry as a float waveform in [-1, 1] (:func:`read_utterance`); :class:`AudioError` names a bad one."""
    return torch.from_numpy(read_utterance(utt, spec, shortest, sample_rate))


@dataclass
class DecodeOptions:
    beam_size: int = 1  # 1: greedy
    batch_size: int = 8
    skip_bad_utterances: bool = False
    lm_weight: float = 0.0  # shallow fusion with the decoder's LM (beam search only)


class CTCDecoder:
    """Batched encoding, then greedy or prefix beam search per utterance (fused with ``lm``, an ESPnet LM on
    the same tokens, at ``options.lm_weight``: :func:`espnet_distill.inference.ctc_search.ctc_beam_search`)."""

    def __init__(self, model: CTCASRModel, tokenizer: Tokenizer, options: DecodeOptions, lm=None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.beam_search = None
        if lm is not None and options.lm_weight != 0 and options.beam_size <= 1:
            raise ValueError("shallow fusion with an LM needs the beam search: give a beam size above 1")
        if options.beam_size > 1:
            self.beam_search = ctc_beam_search(
                model.ctc, tokenizer.token_list, options.beam_size, lm, options.lm_weight
            )

    @torch.no_grad()
    def decode_batch(self, waves: Sequence[torch.Tensor]) -> List[str]:
        # Encoded longest first, as ESPnet's loader sorts training batches: its RNN encoder packs them sorted.
        order = sorted(range(len(waves)), key=lambda i: -len(waves[i]))
        lengths = torch.tensor([len(waves[i]) for i in order])
        padded = torch.nn.utils.rnn.pad_sequence([waves[i] for i in order], batch_first=True)
        encoded, encoded_lengths = self.model.encode(padded, lengths)
        texts = [""] * len(waves)
        for i, enc, n in zip(order, encoded, encoded_lengths.tolist()):
            if self.beam_search is None:
                ids = collapse(self.model.ctc.argmax(enc[None, :n])[0].tolist())
            else:
                ids = beam_ids(self.beam_search, enc[:n])
            texts[i] = self.tokenizer.decode(ids)
        return texts

    def decode(self, wav_scp: Mapping[str, str]) -> Iterator[Tuple[str, str]]:
        """``(utt, hypothesis)`` for every entry, shortest-first batches, in ``wav_scp`` order within each batch."""
        shortest = min_samples(self.model)
        good: Dict[str, torch.Tensor] = {}
        bad: List[AudioError] = []
        for utt, spec in wav_scp.items():
            try:
                good[utt] = read_checked(utt, spec, shortest)
            except AudioError as e:
                bad.append(e)
                if self.options.skip_bad_utterances:
                    logger.warning("skipped (empty hypothesis): %s", e)
                    yield utt, ""
        if bad and not self.options.skip_bad_utterances:
            # Every bad utterance is named, then nothing is decoded (a partial output would look complete).
            for e in bad:
                logger.error("%s", e)
            raise AudioError(
                f"{len(bad)} of {len(wav_scp)} utterances cannot be decoded (each named above; the first: {bad[0]}); "
                "fix them, or decode the rest with --skip_bad_utterances true"
            )
        order = sorted(good, key=lambda u: len(good[u]))
        for start in range(0, len(order), self.options.batch_size):
            batch = order[start : start + self.options.batch_size]
            yield from zip(batch, self.decode_batch([good[u] for u in batch]))


def read_waves(wav_scp: Mapping[str, str], shortest: int, limit: Optional[int] = None) -> Dict[str, np.ndarray]:
    """``wav.scp`` entries (the first ``limit``) as float waveforms in [-1, 1] (errors name the utterance)."""
    items: Sequence = list(wav_scp.items())[:limit] if limit else list(wav_scp.items())
    return {utt: read_utterance(utt, spec, shortest) for utt, spec in items}


def spread(entries: Mapping[str, str], count: int) -> Dict[str, str]:
    """``count`` entries evenly spaced over ``entries`` (a data dir is sorted by speaker: its first
    utterances are one voice)."""
    keys = list(entries)
    if count <= 0 or count >= len(keys):
        return dict(entries)
    return {keys[i * len(keys) // count]: entries[keys[i * len(keys) // count]] for i in range(count)}


def calibration_waves(data_dir: Path, count: int, shortest: int = 1) -> List[np.ndarray]:
    """``count`` waveforms spread over ``data_dir``'s ``wav.scp``: the audio that calibrates int8 activations."""
    return list(read_waves(spread(read_wav_scp(data_dir / "wav.scp"), count), shortest).values())
