"""A fine-tuned model as ONNX: waveform in, CTC log-probabilities out.

The whole inference path is one graph: the front-end (the waveform CNN, or the
Fbank front-end with its filterbanks and CMVN), the encoder and the CTC layer,
with dynamic batch and length axes.  Inputs: ``speech`` ``(batch, samples)``
float32 in [-1, 1] at 16 kHz and ``lengths`` ``(batch,)`` int64; outputs:
``log_probs`` ``(batch, frames, vocab)`` and ``frame_lengths`` ``(batch,)``.

The int8 variant is ONNX Runtime's dynamic quantization of the encoder's and
CTC's MatMul weights (per channel; activations quantized per call) and, given
calibration audio, static quantization of the convolutions; the front-end's
spectrum and filterbank stay float (see :func:`quantize_int8`).

The exported graph computes the same function as the PyTorch model in a form
ONNX Runtime runs faster (:func:`export_ready`); the sessions that run it are
:class:`espnet_distill.inference.onnx_runtime.OnnxCTC`.

Exporting and checking are separate steps: :func:`export_files` writes the
graphs and tokens; :func:`check_parity` runs the graphs it wrote against
PyTorch on a data dir's audio and :func:`score_backends` scores each backend
with sclite.  :func:`export_onnx` runs them in order on one loaded model, in a
staging directory that becomes the output only when every step succeeded.
"""

import argparse
import copy
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_distill.asr.model import CTCASRModel
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.files.onnx_dir import BPE_NAME, FP32_NAME, INT8_NAME, META_NAME, TOKENS_NAME, write_meta
from espnet_distill.frontend.fbank import BatchedKaldiFbank
from espnet_distill.inference.ctc_search import greedy_ids
from espnet_distill.inference.decode import load_asr_model, min_samples
from espnet_distill.inference.forward import CTCInference
from espnet_distill.inference.onnx_runtime import DISABLED_OPTIMIZERS, OnnxCTC
from espnet_distill.scoring.sclite import score
from espnet_distill.text.tokens import Tokenizer
from espnet_distill.utils.checksums import SUMS_NAME, write_sums
from espnet_distill.utils.cli import check_output_dir

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def export_ready(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` computing the same function in a form ONNX Runtime runs faster; ``model`` is unchanged.

    Parametrized weights (the positional convolution's weight norm) become plain tensors, so the graph
    holds the weight instead of recomputing it on every call and quantization can see it; the Fbank
    front-end computes its spectra as one convolution (:meth:`BatchedKaldiFbank.use_frame_basis`).
    """
    ready = copy.deepcopy(model)
    for module in ready.modules():
        if torch.nn.utils.parametrize.is_parametrized(module):
            # A deep copy keeps the class torch made for the original parametrized module, and removing a
            # parametrization deletes its property from that class: the original would lose its weight.
            # The copy gets a class of its own first (the same attributes), which removal then replaces by
            # the plain module class, as it would for the original.
            cls = type(module)
            attributes = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
            module.__class__ = type(cls.__name__, cls.__bases__, attributes)
            for name in list(module.parametrizations):
                torch.nn.utils.parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    for module in ready.modules():
        if isinstance(module, BatchedKaldiFbank):
            module.use_frame_basis()
    return ready


def export_graph(model: CTCASRModel, path: Path, shortest: int) -> None:
    """``torch.onnx.export`` (dynamo) of :class:`CTCInference` of :func:`export_ready` ``(model)`` with dynamic
    batch and length (``model`` itself is unchanged)."""
    wrapper = CTCInference(export_ready(model)).eval()
    example = (
        torch.randn(2, max(4 * shortest, 16000)) * 0.1,
        torch.tensor([max(4 * shortest, 16000), max(2 * shortest, 12000)]),
    )
    batch = torch.export.Dim("batch", min=1, max=1024)
    samples = torch.export.Dim("samples", min=shortest, max=SAMPLE_RATE * 3600)
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            example,
            dynamo=True,
            dynamic_shapes=({0: batch, 1: samples}, {0: batch}),
            input_names=["speech", "lengths"],
            output_names=["log_probs", "frame_lengths"],
            verbose=False,
        )
    program.save(str(path))


def quantize_int8(
    fp32: Path, int8: Path, calibration: Optional[Sequence[np.ndarray]] = None, int8_front: Sequence[str] = ()
) -> Dict[str, List[str]]:
    """The int8 variant: ONNX Runtime's quantization, dynamic for the MatMuls and static for the convolutions.

    - The encoder's and CTC's MatMuls: dynamic quantization, int8 weights per
      output channel, activations quantized per call.
    - The encoder's convolution (the positional one): static quantization with
      activation ranges from ``calibration`` (waveforms, e.g. a few dozen
      training utterances).  ONNX Runtime's dynamic ``ConvInteger`` is slower
      than float; its static ``QLinearConv`` is faster.  Without ``calibration``
      it stays float.
    - The front-end stays float: its MatMuls (the Fbank spectrum and mel
      filterbank, whose inputs span many decades; quantizing the mel one raised
      the mini Fbank student's test CER from 30% to 93%) and its convolutions
      (statically quantized, the waveform CNN raised the mini wav_cnn student's
      test CER from 40.5% to 65.0%), except the layers whose weight names start
      with one of ``int8_front`` (a front-end's ``int8_layers``), which are
      treated as the encoder's.

    Returns the node names by treatment: ``{"dynamic": [...], "static": [...], "float": [...]}``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    front, dynamic, convs = _int8_node_groups(fp32, int8_front)
    source = fp32
    with tempfile.TemporaryDirectory() as work:
        if calibration and convs:
            source = Path(work) / "static.onnx"
            _quantize_convs_static(fp32, source, calibration, front)
        else:
            convs = []
        quantize_dynamic(
            str(source),
            str(int8),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=front,
            per_channel=True,
        )
    return {"dynamic": dynamic, "static": convs, "float": front}


def _int8_node_groups(fp32: Path, int8_front: Sequence[str]) -> Tuple[List[str], List[str], List[str]]:
    """The graph's nodes by treatment: front-end (kept float), weight MatMuls (dynamic) and other convolutions."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    front = [
        n.name
        for n in graph.node
        if n.op_type in ("MatMul", "Conv")
        and any(i.startswith("frontend.") and not i.startswith(tuple(int8_front)) for i in n.input)
    ]
    weights = {i.name for i in graph.initializer}
    dynamic = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights and n.name not in front]
    convs = [n.name for n in graph.node if n.op_type == "Conv" and n.name not in front]
    return front, dynamic, convs


def _quantize_convs_static(fp32: Path, out: Path, calibration: Sequence[np.ndarray], exclude: Sequence[str]) -> None:
    """Write ``fp32`` with its convolutions (but ``exclude``) statically quantized, ranges from ``calibration``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Waves(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            wave = next(self.items, None)
            if wave is None:
                return None
            return {"speech": wave[None].astype(np.float32), "lengths": np.array([len(wave)], dtype=np.int64)}

    quantize_static(
        str(fp32),
        str(out),
        Waves(),
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=exclude,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


@dataclass
class Parity:
    """What :func:`check_parity` measured on a data dir (and :func:`score_backends`, the CER)."""

    utterances: int = 0
    max_abs_diff: float = 0.0  # log-probabilities, valid frames, fp32 graph against PyTorch
    identical_hypotheses: int = 0  # greedy, fp32 graph against PyTorch
    int8_identical_hypotheses: Optional[int] = None
    cer: Dict[str, float] = field(default_factory=dict)  # sclite CER of pytorch / onnx_fp32 / onnx_int8


Hypotheses = Dict[str, Dict[str, str]]  # backend name -> utterance -> greedy text


def export_files(
    model: CTCASRModel,
    train_args: argparse.Namespace,
    out_dir: Path,
    int8: bool = True,
    calibration: Optional[Sequence[np.ndarray]] = None,
) -> Tuple[List[str], Optional[Dict[str, List[str]]]]:
    """Write the graphs of ``model`` and its token list into the existing directory ``out_dir``.

    ``model.onnx`` (:func:`export_graph`), with ``int8`` ``model.int8.onnx``
    (:func:`quantize_int8`, ``calibration`` setting its convolutions' ranges),
    ``tokens.txt``, and ``bpe.model`` for a BPE model.  ``model`` is unchanged.
    Returns the names written and the int8 nodes by treatment (None without ``int8``).
    """
    export_graph(model, out_dir / FP32_NAME, min_samples(model))
    files = [FP32_NAME]
    quantized: Optional[Dict[str, List[str]]] = None
    if int8:
        int8_front = [f"frontend.{name}" for name in getattr(model.frontend, "int8_layers", ())]
        quantized = quantize_int8(out_dir / FP32_NAME, out_dir / INT8_NAME, calibration, int8_front)
        files.append(INT8_NAME)
    (out_dir / TOKENS_NAME).write_text("\n".join(train_args.token_list) + "\n", encoding="utf-8")
    files.append(TOKENS_NAME)
    if train_args.token_type == "bpe" and train_args.bpemodel:
        shutil.copyfile(train_args.bpemodel, out_dir / BPE_NAME)
        files.append(BPE_NAME)
    return files, quantized


def check_parity(
    model: CTCASRModel, onnx_dir: Path, waves: Mapping[str, np.ndarray], tokenizer: Tokenizer
) -> Tuple[Parity, Hypotheses]:
    """Run PyTorch and the graphs in ``onnx_dir`` (``model.onnx``, and ``model.int8.onnx`` when there) on each
    utterance alone; compare the fp32 log-probabilities with PyTorch's and every backend's greedy text.

    Returns what was measured and each backend's hypotheses (``pytorch``,
    ``onnx_fp32``, ``onnx_int8``), for :func:`score_backends`.
    """
    wrapper = CTCInference(model).eval()
    sessions = {"onnx_fp32": OnnxCTC(onnx_dir / FP32_NAME)}
    if (onnx_dir / INT8_NAME).is_file():
        sessions["onnx_int8"] = OnnxCTC(onnx_dir / INT8_NAME)
    parity = Parity()
    hyps: Hypotheses = {name: {} for name in ("pytorch", *sessions)}
    for utt, wave in waves.items():
        speech, lengths = wave[None].astype(np.float32), np.array([len(wave)])
        with torch.no_grad():
            ref, ref_lengths = wrapper(torch.from_numpy(speech), torch.from_numpy(lengths))
        n = int(ref_lengths[0])
        hyps["pytorch"][utt] = tokenizer.decode(greedy_ids(ref[0].numpy(), n))
        for name, session in sessions.items():
            out, out_lengths = session(speech, lengths)
            if int(out_lengths[0]) != n:
                raise ValueError(f"utterance {utt!r}: {name} gives {int(out_lengths[0])} frames, PyTorch {n}")
            if name == "onnx_fp32":
                parity.max_abs_diff = max(parity.max_abs_diff, float(np.abs(out[0, :n] - ref[0, :n].numpy()).max()))
            hyps[name][utt] = tokenizer.decode(greedy_ids(out[0], n))
        parity.utterances += 1
    parity.identical_hypotheses = sum(hyps["onnx_fp32"][u] == hyps["pytorch"][u] for u in waves)
    if "onnx_int8" in sessions:
        parity.int8_identical_hypotheses = sum(hyps["onnx_int8"][u] == hyps["pytorch"][u] for u in waves)
    return parity, hyps


def score_backends(hyps: Hypotheses, reference_text: Path, score_dir: Path) -> Dict[str, float]:
    """Each backend's hypotheses scored with sclite against ``reference_text`` (a Kaldi ``text`` covering them):
    characters, as stage 8 scores CER, into ``score_dir/<backend>/``.  Returns the CER by backend."""
    refs = read_kaldi_map(reference_text, allow_empty_value=True)
    cer = {}
    for name, text in hyps.items():
        (score_dir / name).mkdir(parents=True, exist_ok=True)
        (score_dir / name / "ref").write_text("".join(f"{u} {refs[u]}\n" for u in text), encoding="utf-8")
        (score_dir / name / "hyp").write_text("".join(f"{u} {text[u]}\n" for u in text), encoding="utf-8")
        cer[name] = score(score_dir / name / "ref", score_dir / name / "hyp", None, score_dir / name, chars=True).err
    return cer


@dataclass
class ExportResult:
    out_dir: Path
    files: List[str]
    parity: Optional[Parity]


def export_onnx(
    exp_dir: Path,
    out_dir: Path,
    checkpoint: Optional[str] = None,
    int8: bool = True,
    waves: Optional[Mapping[str, np.ndarray]] = None,
    reference_text: Optional[Path] = None,
    tolerance: float = 1e-3,
    calibration: Optional[Sequence[np.ndarray]] = None,
    loaded: Optional[Tuple[CTCASRModel, argparse.Namespace]] = None,
) -> ExportResult:
    """Export ``exp_dir``'s model (fp32 and int8) with its token list into ``out_dir``, written whole or not at all.

    The steps, in a staging directory renamed to ``out_dir`` at the end:
    :func:`export_files` writes the graphs and tokens; with ``waves``,
    :func:`check_parity` runs them against PyTorch and, with ``reference_text``,
    :func:`score_backends` scores every backend (into ``parity/``); last
    ``model.json`` and ``SHA256SUMS`` (``sha256sum``'s format, names relative to
    ``out_dir``) of the files, which ``transcribe`` verifies before use.

    An ``out_dir`` that cannot be written is refused before anything is done.
    ``loaded`` is the model of ``exp_dir`` and ``checkpoint`` when the caller has
    loaded it (:func:`load_asr_model`); it is loaded here otherwise.
    ``calibration`` (waveforms, e.g. training utterances) sets the activation
    ranges of the int8 model's statically quantized convolutions (see :func:`quantize_int8`).

    With ``waves``, parity is checked before anything is kept: the fp32 graph's
    log-probabilities must be within ``tolerance`` of PyTorch's and its greedy
    hypotheses identical, else :class:`ValueError`.
    """

    check_output_dir(out_dir, "export directory")
    model, args = loaded if loaded is not None else load_asr_model(exp_dir, checkpoint)
    tokenizer = Tokenizer(args.token_list, args.token_type, args.bpemodel)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        files, quantized = export_files(model, args, staging, int8, calibration)
        parity = None
        if waves:
            parity = _checked_parity(model, staging, waves, tokenizer, reference_text, tolerance, exp_dir)
        meta = _export_meta(exp_dir, checkpoint, model, args, files, quantized, calibration, parity)
        write_meta(staging, meta)
        write_sums(staging, [*files, META_NAME])
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported %s to %s (%s)", exp_dir, out_dir, ", ".join(files))
    return ExportResult(out_dir, [*files, META_NAME, SUMS_NAME], parity)


def _checked_parity(
    model: CTCASRModel,
    staging: Path,
    waves: Mapping[str, np.ndarray],
    tokenizer: Tokenizer,
    reference_text: Optional[Path],
    tolerance: float,
    exp_dir: Path,
) -> Parity:
    """:func:`check_parity` (and :func:`score_backends` with ``reference_text``); raise unless the fp32 graph matches."""
    parity, hyps = check_parity(model, staging, waves, tokenizer)
    if reference_text is not None:
        parity.cer = score_backends(hyps, reference_text, staging / "parity")
    if parity.max_abs_diff > tolerance or parity.identical_hypotheses != parity.utterances:
        raise ValueError(
            f"{exp_dir}: the ONNX graph does not match PyTorch: max abs diff {parity.max_abs_diff:.2e} "
            f"(tolerance {tolerance:g}), {parity.identical_hypotheses}/{parity.utterances} identical hypotheses"
        )
    return parity


def _export_meta(
    exp_dir: Path,
    checkpoint: Optional[str],
    model: CTCASRModel,
    args: argparse.Namespace,
    files: List[str],
    quantized: Optional[Dict[str, List[str]]],
    calibration: Optional[Sequence[np.ndarray]],
    parity: Optional[Parity],
) -> Dict:
    """The contents of ``model.json`` (:mod:`espnet_distill.files.onnx_dir`): where the graphs came from, their
    inputs and outputs, int8 and parity."""
    return {
        "source": str(exp_dir),
        "checkpoint": checkpoint,
        "sample_rate": SAMPLE_RATE,
        "token_type": args.token_type,
        "bpemodel": BPE_NAME if BPE_NAME in files else None,
        "frontend": args.frontend,
        "inputs": {"speech": "(batch, samples) float32 in [-1, 1]", "lengths": "(batch,) int64"},
        "outputs": {"log_probs": "(batch, frames, vocab)", "frame_lengths": "(batch,)"},
        "min_samples": min_samples(model),
        "frame_shift": int(model.frontend.frame_shift),
        "files": files,
        "onnxruntime": {"disabled_optimizers": DISABLED_OPTIMIZERS},
        "int8": None
        if quantized is None
        else {
            "dynamic_matmuls": len(quantized["dynamic"]),
            "static_convs": len(quantized["static"]),
            "float": quantized["float"],
            "calibration_utterances": len(calibration) if quantized["static"] else 0,
        },
        "parity": asdict(parity) if parity else None,
    }
