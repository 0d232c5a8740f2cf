"""Distillation steps with the teacher on the fly against stored targets, and what storing them costs.

One batch, the student of a distillation config, the same threads: a training step (forward,
backward, optimizer) with the teacher run on the batch, and one with its stored targets read from
disk (``TargetsReader`` and the collate, as ESPnet's loader does), interleaved, medians.  The batch is
dumped first (:func:`~espnet_distill.distill.targets.dump_targets`, into a temporary dir), which
gives the dump's cost per second of audio and the bytes per hour of every stored name.  Stage B
steps are timed (``frontend_steps`` set to 0).  The crops are the config's (``crop_to_shortest``).

Examples:
    # the mini recipe's student and teacher, a batch of its unlabelled set
    python -m espnet_distill.benchmark.stored_targets \\
        --distill_config egs/mini_synth/asr1/conf/distill/deep_thin_reg_kl.yaml --frontend fbank \\
        --teacher torchaudio --teacher_conf "{path: egs/mini_synth/asr1/pretrained/hubert_mini.pt}" \\
        --fbank_stats egs/mini_synth/asr1/data/train/feats_stats.npz --data_dir egs/mini_synth/asr1/data/ssl
    # paper scale: HuBERT Base (random weights), 4 crops of 250k samples (the recipe's 12 need over 24 GB on a CPU)
    python -m espnet_distill.benchmark.stored_targets \\
        --distill_config egs/librispeech/asr1/conf/distill/deep_thin_reg_kl.yaml --teacher untrained \\
        --utts 4 --seconds 15.625
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import soundfile
import torch

from espnet_distill.benchmark.inputs import SAMPLE_RATE, read_utterances
from espnet_distill.distill import targets
from espnet_distill.tasks.distill import build_student_models
from espnet_distill.utils.cli import run
from espnet_distill.utils.machine import machine_description, machine_line

FRAMES_PER_HOUR = 3600 * SAMPLE_RATE / 320  # HuBERT's 20 ms frames


def write_data_dir(waves: List[torch.Tensor], root: Path) -> Path:
    data = root / "data"
    (data / "wav").mkdir(parents=True)
    lines = []
    for i, wave in enumerate(waves):
        path = data / "wav" / f"utt{i:03d}.wav"
        soundfile.write(str(path), wave.reshape(-1).numpy(), SAMPLE_RATE, subtype="FLOAT")
        lines.append(f"utt{i:03d} {path}\n")
    (data / "wav.scp").write_text("".join(lines))
    return data


def crop_difference(model, speech: torch.Tensor, lengths: torch.Tensor, stored: Dict, spec, geometry: Dict) -> Dict:
    """Stored targets of a crop (frames of the whole utterance: the teacher saw beyond the crop's edges)
    against the teacher run on the crop itself: per layer, the mean cosine similarity and relative L1 of the
    valid frames; and the student's loss both ways on the same crops."""
    from espnet_distill.distill.model import crop_batch

    generator = torch.Generator().manual_seed(0)
    stride = geometry["stride"]
    crops, crop_lengths, starts = crop_batch(
        speech, lengths, model.crop_samples, model.crop_to_shortest, generator, stride
    )
    if starts is None:
        return {}
    batch = targets.stored_batch(stored, spec, geometry["conv"], lengths)
    frames = targets.conv_frames(crop_lengths, geometry["conv"])
    cropped = batch.crop(torch.div(starts, stride, rounding_mode="floor"), frames)
    model.eval()
    with torch.no_grad():
        fly = model.teacher(crops, crop_lengths)
        valid = torch.arange(int(frames.max()))[None] < frames[:, None]
        layers = {}
        for position, layer in enumerate(spec.layers):
            a, b = fly.hidden_states[layer][:, : valid.shape[1]][valid], cropped.hidden[:, :, position][valid]
            layers[str(layer)] = {
                "cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()),
                "relative_l1": float((a - b).abs().mean() / a.abs().mean()),
            }
        loss_fly = model(crops, crop_lengths)[1]
        kwargs = {"teacher_hidden": cropped.hidden, "teacher_hidden_lengths": cropped.lengths}
        if cropped.projected is not None:
            kwargs["teacher_projected"] = cropped.projected
        if cropped.logits is not None:
            kwargs["teacher_logits" if cropped.index is None else "teacher_topk_logprob"] = cropped.logits
        if cropped.index is not None:
            kwargs["teacher_topk_index"] = cropped.index
        model.use_stored_targets(spec, geometry)
        loss_stored = model(crops, crop_lengths, **kwargs)[1]
        model.stored = None
    return {
        "crop_seconds": float(crop_lengths.min()) / SAMPLE_RATE,
        "layers": layers,
        "loss": {"teacher on the crop": float(loss_fly["loss"]), "stored, whole utterance": float(loss_stored["loss"])},
    }


def storage_table(manifest: Dict, spec: targets.TargetSpec, hidden_size: int) -> List[Dict]:
    """Bytes per hour of audio of each way to store the targets: measured on the dump, and the analytic
    figure for the other precisions and a top k of 8."""
    per_frame_layers = len(spec.layers) * hidden_size
    rows = [
        {"what": f"{len(spec.layers)} layers x {hidden_size}, float32", "bytes_per_frame": per_frame_layers * 4},
        {"what": f"{len(spec.layers)} layers x {hidden_size}, float16", "bytes_per_frame": per_frame_layers * 2},
    ]
    if spec.projected:
        rows.append({"what": f"projected CNN features x {hidden_size}, float16", "bytes_per_frame": hidden_size * 2})
    if spec.codewords is not None:
        num = spec.codewords["num"]
        rows.append({"what": f"all {num} codeword logits, float16", "bytes_per_frame": num * 2})
        rows.append({"what": "top 8 codewords: log-probabilities float16 + ids int16", "bytes_per_frame": 8 * 4})
    rows.append({"what": "icefall's MVQ (one layer, 8 codebooks; not implemented here)", "bytes_per_frame": 8})
    for row in rows:
        row["gb_per_hour"] = row["bytes_per_frame"] * FRAMES_PER_HOUR / 1e9
        row["tb_960h"] = row["gb_per_hour"] * 960 / 1000
    measured = manifest.get("bytes_per_hour") or {}
    return rows + [
        {"what": f"measured {name}.npy", "gb_per_hour": value / 1e9, "tb_960h": value * 960 / 1e12}
        for name, value in measured.items()
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distill_config", required=True, help="the student's distillation YAML")
    parser.add_argument("--frontend", choices=["wav_cnn", "fbank"], help="override the config's front-end")
    parser.add_argument("--teacher", default="untrained", help="the teacher's format (untrained: HuBERT Base)")
    parser.add_argument("--teacher_conf", default="{}", help="its loader's arguments as YAML")
    parser.add_argument("--teacher_yaml", type=Path, help="instead of --teacher/--teacher_conf")
    parser.add_argument("--fbank_stats", type=Path)
    parser.add_argument("--data_dir", type=Path, help="utterances of this data dir (default: noise of --seconds)")
    parser.add_argument("--utts", type=int, default=4, help="utterances in the batch")
    parser.add_argument("--seconds", type=float, default=15.625, help="noise length of each utterance")
    parser.add_argument("--dtype", choices=targets.DTYPES, default="float16")
    parser.add_argument("--topk", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def time_steps(model, speech, lengths, spec, dump_dir: Path, geometry: Dict, utts: List[str], repeats: int) -> Dict:
    """Median seconds of a training step with the teacher on the fly and from the stored targets (read from disk
    each time), interleaved after one warm-up each."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step(stored: bool) -> float:
        start = time.perf_counter()
        kwargs = targets.collate_stored(dump_dir, utts, spec.names()) if stored else {}
        if stored:
            model.use_stored_targets(spec, geometry)
        model.train()
        loss, _, _ = model(speech, lengths, **kwargs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.stored = None
        if not torch.isfinite(loss):
            raise RuntimeError(f"a non-finite loss ({'stored' if stored else 'on the fly'})")
        return time.perf_counter() - start

    step(False), step(True)  # warm-up
    times: Dict[str, List[float]] = {"on the fly": [], "stored": []}
    for _ in range(repeats):
        times["on the fly"].append(step(False))
        times["stored"].append(step(True))
    return {k: statistics.median(v) for k, v in times.items()}


def report(figures: Dict, title: str) -> List[str]:
    medians, edges = figures["step_seconds"], figures["crop_edges"]
    lines = [title, figures["machine"], "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in medians.items()]
    lines.append(
        f"stored targets: {figures['speedup']:.2f}x faster a step; the dump: "
        f"{figures['dump_seconds_per_audio_second']:.3f} s per second of audio"
    )
    lines += ["| stored | GB per hour | TB for 960 h |", "|---|---|---|"]
    lines += [f"| {row['what']} | {row['gb_per_hour']:.3f} | {row['tb_960h']:.3f} |" for row in figures["storage"]]
    if edges:
        lines.append(
            f"crops of {edges['crop_seconds']:.2f} s: stored targets (the teacher saw the whole utterance) against "
            "the teacher run on the crop"
        )
        lines += ["| layer | cosine | relative L1 |", "|---|---|---|"]
        lines += [
            f"| {layer} | {row['cosine']:.4f} | {row['relative_l1']:.4f} |" for layer, row in edges["layers"].items()
        ]
        lines.append(
            "the student's loss on these crops: " + ", ".join(f"{k} {v:.4f}" for k, v in edges["loss"].items())
        )
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    entry = args.distill_config + (f":{args.frontend}" if args.frontend else "")
    [(model, task_args)] = build_student_models(
        [entry], args.teacher_yaml, args.teacher, args.teacher_conf, args.fbank_stats
    )
    spec = targets.spec_of_models([model], dtype=args.dtype, topk=args.topk)
    model.frontend_steps = 0
    if args.data_dir is not None:
        waves = read_utterances(args.data_dir, args.utts)
    else:
        waves = [torch.randn(1, int(args.seconds * SAMPLE_RATE)) * 0.1 for _ in range(args.utts)]
    lengths = torch.tensor([w.shape[-1] for w in waves])
    speech = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        speech[i, : w.shape[-1]] = w.reshape(-1)
    audio_seconds = float(lengths.sum()) / SAMPLE_RATE
    utts = [f"utt{i:03d}" for i in range(len(waves))]
    with tempfile.TemporaryDirectory() as tmp:
        data, dump_dir = write_data_dir(waves, Path(tmp)), Path(tmp) / "dump"
        result = targets.dump_targets(
            model, task_args.teacher, task_args.teacher_conf, spec, data / "wav.scp", dump_dir
        )
        geometry = result.manifest["geometry"]
        stored = targets.collate_stored(dump_dir, utts, spec.names())
        edges = crop_difference(model, speech, lengths, stored, spec, geometry)
        medians = time_steps(model, speech, lengths, spec, dump_dir, geometry, utts, args.repeats)
    figures = {
        "machine": machine_line(machine_description()),
        "threads": args.threads,
        "batch": {"utterances": len(waves), "audio_seconds": audio_seconds},
        "step_seconds": medians,
        "speedup": medians["on the fly"] / medians["stored"],
        "dump_seconds_per_audio_second": result.seconds / audio_seconds,
        "stored": {"names": spec.names(), "layers": spec.layers, "dtype": spec.dtype},
        "storage": storage_table(result.manifest, spec, model.teacher.hidden_size),
        "crop_edges": edges,
    }
    teacher = args.teacher_yaml or f"{args.teacher} {args.teacher_conf}"
    title = (
        f"{args.distill_config} ({args.frontend or 'its own front-end'}), teacher {teacher}, batch of {len(waves)} "
        f"({audio_seconds:.1f} s), {args.threads} thread(s), median of {args.repeats}"
    )
    print("\n".join(report(figures, title)))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    run(main)
