"""``frontend: fbank``: Kaldi filterbanks, global CMVN and a stride-2 GLU subsampler.

The front-end of the paper's front-end distillation: it replaces HuBERT's
waveform CNN with 80-dim log-mel filterbanks (10 ms frames), normalized with
the training set's global mean and variance, then a Conv1d of stride 2 with a
GLU (20 ms frames, the teacher's rate) and HuBERT's feature projection
(LayerNorm, Linear to the encoder width, dropout).

The filterbanks are computed on the fly from the waveform, batched in torch,
with Kaldi's conventions (:mod:`espnet_distill.features.fbank`): they equal the
features of the recipe's Fbank stage.  The front-end also takes those
features directly (``feats.scp`` input, ``(batch, frames, 80)``).

Frame counts: ``F = 1 + (samples - 400) // 160`` filterbank frames become
``ceil(F / 2)`` output frames, which is ``1 + (samples - 400) // 320``, the
frame count of HuBERT's CNN.  Frames past an utterance's end are zeroed
before the convolution, so padding never changes a valid frame.
"""

import logging
import math
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.specaug import SpecAug
from torchaudio.compliance.kaldi import get_mel_banks
from torchaudio.models.wav2vec2.components import FeatureProjection

from espnet_distill.features.fbank import CMVNStats, FbankOptions, kaldi_waveform
from espnet_distill.utils.masks import padding_mask

logger = logging.getLogger(__name__)


class BatchedKaldiFbank(torch.nn.Module):
    """Kaldi's log-mel filterbank (Povey window, ``snip_edges``, no dither) of a batch of waveforms.

    Args:
        opts: the options of the recipe's Fbank stage (``dither`` must be 0:
            a front-end must give the same features in training and inference).
    """

    def __init__(self, opts: Optional[FbankOptions] = None) -> None:
        super().__init__()
        opts = opts or FbankOptions()
        if opts.dither != 0.0 or not opts.snip_edges:
            raise ValueError("the fbank front-end computes Kaldi features with dither 0 and snip_edges true")
        self.opts = opts
        self.window_size = int(opts.sample_rate * opts.frame_length / 1000)
        self.window_shift = int(opts.sample_rate * opts.frame_shift / 1000)
        self.padded_size = 1 << (self.window_size - 1).bit_length()  # round_to_power_of_two
        banks, _ = get_mel_banks(
            opts.num_mel_bins,
            self.padded_size,
            float(opts.sample_rate),
            opts.low_freq,
            opts.high_freq,
            100.0,
            -500.0,
            1.0,
        )
        # get_mel_banks covers padded_size // 2 bins; Kaldi's last (Nyquist) bin has weight 0.
        banks = torch.nn.functional.pad(banks, (0, 1))
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)  # (bins, mels)
        window = torch.hann_window(self.window_size, periodic=False, dtype=torch.float64).pow(0.85)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("frame_basis", None, persistent=False)  # (2 * bins, 1, window); set by use_frame_basis()

    def use_frame_basis(self) -> None:
        """Compute the frames' spectra as one strided convolution instead of framing, DC removal,
        pre-emphasis, window and FFT.

        Those steps are all linear in the frame, so they fold into one ``(window, 2 * bins)`` matrix
        (computed in float64) that gives ``[real | imag]`` of the spectrum, applied to every frame by a
        convolution with stride ``window_shift``.  The result equals the FFT path to float32 rounding;
        ONNX Runtime runs it about twice as fast as framing (Gather) and its DFT (4 s of audio, 1 thread:
        1.7 ms against 2.8 ms for framing and a MatMul, 3.7 ms for the DFT alone), so the ONNX export uses it.
        """
        n = self.window_size
        frame = torch.eye(n, dtype=torch.float64)  # row i: the unit frame e_i, pushed through each step
        if self.opts.remove_dc_offset:
            frame = frame - frame.mean(dim=-1, keepdim=True)
        coefficient = self.opts.preemphasis_coefficient
        if coefficient != 0.0:
            frame = frame - coefficient * torch.cat([frame[..., :1], frame[..., :-1]], dim=-1)
        frame = frame * self.window.double()
        bins = self.padded_size // 2 + 1
        angle = (
            2
            * math.pi
            * torch.arange(n, dtype=torch.float64)[:, None]
            * torch.arange(bins, dtype=torch.float64)
            / self.padded_size
        )
        basis = torch.cat([frame @ torch.cos(angle), -(frame @ torch.sin(angle))], dim=1)  # (window, 2 * bins)
        self.frame_basis = basis.T.unsqueeze(1).to(self.window.dtype).contiguous()

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        frames = torch.div(num_samples - self.window_size, self.window_shift, rounding_mode="floor") + 1
        return frames.clamp(min=0)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` in [-1, 1] to ``(batch, frames, mels)`` and frame counts; the samples are
        scaled to Kaldi's int16 range first (:func:`~espnet_distill.features.fbank.kaldi_waveform`)."""
        waveform = kaldi_waveform(waveform)
        if waveform.shape[1] < self.window_size:
            waveform = torch.nn.functional.pad(waveform, (0, self.window_size - waveform.shape[1]))
        if self.frame_basis is not None:  # framing and the spectrum as one strided convolution
            spectra = torch.nn.functional.conv1d(waveform.unsqueeze(1), self.frame_basis, stride=self.window_shift)
            real, imag = spectra.transpose(1, 2).chunk(2, dim=-1)
            spectrum = real * real + imag * imag
        else:
            frames = waveform.unfold(1, self.window_size, self.window_shift)  # (B, T, window)
            if self.opts.remove_dc_offset:
                frames = frames - frames.mean(dim=-1, keepdim=True)
            coefficient = self.opts.preemphasis_coefficient
            if coefficient != 0.0:
                previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
                frames = frames - coefficient * previous
            frames = frames * self.window
            spectrum = torch.fft.rfft(frames, n=self.padded_size).abs().pow(2)
        mel = torch.matmul(spectrum, self.mel_banks)
        # Kaldi floors the mel energies at float32's epsilon (energy_floor is for the log energy only).
        return mel.clamp(min=torch.finfo(torch.float32).eps).log(), self.num_frames(lengths)


class FbankFrontend(AbsFrontend):
    """Fbank + global CMVN + Conv1d(stride 2) + GLU + projection.

    Args:
        output_dim: width of the projection (the encoder's width).
        conv_channels: channels after the GLU (None: ``output_dim``).
        conv_kernel: kernel of the stride-2 convolution (odd).
        dropout: dropout after the projection.
        stats_file: ESPnet's ``feats_stats.npz`` (``count``, ``sum``,
            ``sum_square``) of the training set, from the Fbank stage.  The
            statistics are kept in the state dict, so a saved model needs no file.
        fbank_conf: :class:`FbankOptions` fields (the Fbank stage's ``conf/fbank.yaml``).
        specaug_conf: ESPnet ``SpecAug`` arguments: masks on the normalized
            filterbanks in training (None: none).
    """

    # Layers whose int8 quantization the ONNX export may apply (the normalized filterbanks' convolution;
    # measured on the mini Fbank student: test CER 39.3% with it in int8 as without).
    int8_layers = ("conv.",)

    def __init__(
        self,
        output_dim: int = 768,
        conv_channels: Optional[int] = None,
        conv_kernel: int = 3,
        dropout: float = 0.1,
        stats_file: Optional[Union[str, Path]] = None,
        fbank_conf: Optional[dict] = None,
        specaug_conf: Optional[dict] = None,
    ) -> None:
        super().__init__()
        if conv_kernel % 2 != 1:
            raise ValueError(f"conv_kernel must be odd, got {conv_kernel}")
        self.fbank = BatchedKaldiFbank(FbankOptions(**(fbank_conf or {})))
        mels = self.fbank.opts.num_mel_bins
        self.register_buffer("cmvn_mean", torch.zeros(mels))
        self.register_buffer("cmvn_istd", torch.ones(mels))
        if stats_file is not None:
            self.load_stats(stats_file)
        else:
            logger.info("fbank front-end without stats_file: CMVN statistics must come from a saved model")
        self.specaug = SpecAug(**specaug_conf) if specaug_conf else None
        conv_channels = conv_channels or output_dim
        self.conv = torch.nn.Conv1d(mels, 2 * conv_channels, conv_kernel, stride=2, padding=conv_kernel // 2)
        self.projection = FeatureProjection(conv_channels, output_dim, dropout)
        self._output_dim = output_dim

    def load_stats(self, stats_file: Union[str, Path]) -> None:
        stats = CMVNStats.load_npz(stats_file)
        if stats.sum.shape != (self.fbank.opts.num_mel_bins,):
            raise ValueError(
                f"{stats_file}: statistics of dim {stats.sum.shape}, the front-end has {self.fbank.opts.num_mel_bins} mels"
            )
        self.cmvn_mean.copy_(torch.from_numpy(stats.mean))
        self.cmvn_istd.copy_(torch.from_numpy(1.0 / stats.std))

    def output_size(self) -> int:
        return self._output_dim

    @property
    def frame_shift(self) -> int:
        """Samples per output frame (320 at 16 kHz with 10 ms filterbank frames)."""
        return 2 * self.fbank.window_shift

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame (a 25 ms window and ``conv_kernel`` filterbank frames)."""
        return self.fbank.window_size + (self.conv.kernel_size[0] - 1) * self.fbank.window_shift

    def features(self, input: torch.Tensor, input_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalized filterbanks ``(batch, frames, mels)`` of waveforms in [-1, 1] (or of filterbanks)."""
        if input.dim() == 3:  # feats.scp input: the Fbank stage's features
            feats, lengths = input, input_lengths
        else:
            feats, lengths = self.fbank(input, input_lengths)
        feats = (feats - self.cmvn_mean) * self.cmvn_istd
        if self.specaug is not None and self.training:
            feats, _ = self.specaug(feats, lengths)
        return feats.masked_fill(padding_mask(lengths, feats.shape[1])[..., None], 0.0), lengths

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Waveforms ``(batch, samples)`` in [-1, 1], or filterbanks ``(batch, frames, mels)``, to
        ``(batch, ceil(frames / 2), output_dim)`` and frame counts."""
        feats, lengths = self.features(input, input_lengths)
        hidden = torch.nn.functional.glu(self.conv(feats.transpose(1, 2)), dim=1).transpose(1, 2)
        return self.projection(hidden), torch.div(lengths + 1, 2, rounding_mode="floor")
