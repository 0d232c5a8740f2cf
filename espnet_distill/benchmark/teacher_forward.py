"""The teacher's forward pass against torchaudio's own, on one batch: seconds per pass, side by side.

This project's teacher (:class:`~espnet_distill.teacher.hubert.HubertTeacher`) runs torchaudio's modules
but its own CNN normalization, exact under padding (:func:`~espnet_distill.frontend.conv.conv_features`);
torchaudio's ``extract_features`` normalizes over the padded frames too.  Both get the same batch, the
same weights (HuBERT Base, random, seeded) and the same threads; the passes are interleaved and each
figure is a median.  Two batches: utterances of different lengths (padded) and the same utterances cut
to the shortest (no padding).

Example:
    python -m espnet_distill.benchmark.teacher_forward --threads 1 --repeats 5
    python -m espnet_distill.benchmark.teacher_forward --data_dir data/test --utts 4
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torchaudio.models import Wav2Vec2Model, hubert_base

from espnet_distill.benchmark.inputs import SAMPLE_RATE, read_utterances
from espnet_distill.teacher.hubert import HubertTeacher
from espnet_distill.utils.cli import run
from espnet_distill.utils.machine import machine_description, machine_line


def padded_batch(waves: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
    lengths = torch.tensor([w.shape[-1] for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : w.shape[-1]] = w.reshape(-1)
    return {"speech": batch, "lengths": lengths}


def compare(model: Wav2Vec2Model, waves: Sequence[torch.Tensor], repeats: int) -> Dict[str, Dict[str, float]]:
    """Median seconds per pass of each forward on each batch: ``{batch: {forward: seconds}}``."""
    teacher = HubertTeacher(model)
    shortest = min(w.shape[-1] for w in waves)
    batches = {"padded": padded_batch(waves), "no padding": padded_batch([w[..., :shortest] for w in waves])}
    forwards: Dict[str, Callable[[torch.Tensor, torch.Tensor], object]] = {
        "torchaudio extract_features": lambda x, n: model.extract_features(x, n),
        "espnet_distill teacher": lambda x, n: teacher(x, n),
    }
    results: Dict[str, Dict[str, float]] = {}
    with torch.inference_mode():
        for name, batch in batches.items():
            times: Dict[str, List[float]] = {forward: [] for forward in forwards}
            for forward in forwards.values():  # warm-up
                forward(batch["speech"], batch["lengths"])
            for _ in range(repeats):
                for forward_name, forward in forwards.items():
                    start = time.perf_counter()
                    forward(batch["speech"], batch["lengths"])
                    times[forward_name].append(time.perf_counter() - start)
            results[name] = {forward: statistics.median(values) for forward, values in times.items()}
    return results


def render(results: Dict[str, Dict[str, float]], audio_seconds: Dict[str, float]) -> List[str]:
    forwards = list(next(iter(results.values())))
    lines = [
        "| batch | audio s | " + " | ".join(f"{f} s" for f in forwards) + " | ratio |",
        "|" + "---|" * (len(forwards) + 3),
    ]
    for name, row in results.items():
        cells = " | ".join(f"{row[f]:.3f}" for f in forwards)
        lines.append(f"| {name} | {audio_seconds[name]:.1f} | {cells} | {row[forwards[1]] / row[forwards[0]]:.2f} |")
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, help="utterances of this data dir (default: noise of --seconds)")
    parser.add_argument("--utts", type=int, default=4, help="utterances in the batch")
    parser.add_argument("--seconds", type=float, nargs="+", default=[6.0, 5.0, 4.0, 3.0], help="noise lengths")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.data_dir is not None:
        waves = read_utterances(args.data_dir, args.utts)
    else:
        waves = [torch.randn(1, int(s * SAMPLE_RATE)) * 0.1 for s in args.seconds[: args.utts]]
    model = hubert_base().eval()
    results = compare(model, waves, args.repeats)
    shortest = min(w.shape[-1] for w in waves)
    seconds = {
        "padded": sum(w.shape[-1] for w in waves) / SAMPLE_RATE,
        "no padding": shortest * len(waves) / SAMPLE_RATE,
    }
    print(f"HuBERT Base (random weights), batch of {len(waves)}, {args.threads} thread(s), median of {args.repeats}")
    print(machine_line(machine_description()))
    print("\n".join(render(results, seconds)))


if __name__ == "__main__":
    run(main)
