"""The SUPERB section of RESULTS.md: frozen upstreams under one downstream, mean and spread over seeds.

Reads ``exp/superb_<task>_<upstream>_seed<n>[_<train set>]/`` (stage 11; the suffix names a
downstream training set other than the recipe's, e.g. the low-resource ``train_10pct``):
``layer_weights.json`` (the upstream's size and learnt layer weights) and
``decode_ctc_greedy/<set>/score.json`` (sclite: for ``asr`` the WER and CER, for ``pr`` the error
rate of phone tokens, PER).  Writes one table per downstream training set, one row per upstream, and
a plot of the layer weights of each upstream (``superb_layer_weights.png``, the recipe's training set).
"""

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

SUPERB_DIR = re.compile(r"^superb_(asr|pr)_(.+)_seed(\d+)(?:_(.+))?$")
DEFAULT_TRAIN_SET = ""  # the recipe's training set: no suffix
ROW_ORDER = ("fbank", "teacher")  # then the students, then the untrained structures (random_*)


@dataclass
class Upstream:
    name: str
    params: int = 0
    # (task, set, metric) -> one value per seed; (task) -> the layer weights of each seed
    scores: Dict[Tuple[str, str, str], List[float]] = field(default_factory=dict)
    weights: Dict[str, List[List[float]]] = field(default_factory=dict)


def read_superb(exp_root: Path) -> Dict[str, Dict[str, Upstream]]:
    """Every finished stage-11 run under ``exp_root``: by downstream training set (``""``: the recipe's),
    then by upstream name."""
    runs: Dict[str, Dict[str, Upstream]] = {}
    for path in sorted(exp_root.glob("superb_*_seed*/layer_weights.json")):
        match = SUPERB_DIR.match(path.parent.name)
        if match is None:
            continue
        task, name, train_set = match.group(1), match.group(2), match.group(4) or DEFAULT_TRAIN_SET
        record = json.loads(path.read_text(encoding="utf-8"))
        upstream = runs.setdefault(train_set, {}).setdefault(name, Upstream(name))
        upstream.params = int(record.get("upstream_params", 0))
        upstream.weights.setdefault(task, []).append([float(w) for w in record["weights"]])
        for score_file in sorted(path.parent.glob("decode_ctc_greedy/*/score.json")):
            scores = json.loads(score_file.read_text(encoding="utf-8"))
            metrics = {"wer": "per"} if task == "pr" else {"wer": "wer", "cer": "cer"}
            for kind, metric in metrics.items():
                upstream.scores.setdefault((task, score_file.parent.name, metric), []).append(scores[kind]["err"])
    return runs


def _order(name: str) -> Tuple[int, str]:
    if name in ROW_ORDER:
        return ROW_ORDER.index(name), name
    return (3 if name.startswith("random_") else 2), name


def _cell(values: Optional[Sequence[float]]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def render_superb(upstreams: Dict[str, Upstream], dev: str, test: str) -> List[str]:
    """The table (one row per upstream; mean ± standard deviation over the seeds), or nothing."""
    if not upstreams:
        return []
    columns = [("asr", dev, "cer"), ("asr", test, "cer"), ("asr", test, "wer"), ("pr", dev, "per"), ("pr", test, "per")]
    lines = [
        "| upstream | params | " + " | ".join(f"{t.upper()} {m.upper()} {s}" for t, s, m in columns) + " | seeds |",
        "|" + "---|" * (len(columns) + 3),
    ]
    for name in sorted(upstreams, key=_order):
        up = upstreams[name]
        seeds = max((len(w) for w in up.weights.values()), default=0)
        cells = [_cell(up.scores.get(column)) for column in columns]
        lines.append(f"| {name} | {up.params / 1e6:.2f} M | " + " | ".join(cells) + f" | {seeds} |")
    return lines


def plot_layer_weights(upstreams: Dict[str, Upstream], out: Path) -> bool:
    """One panel per task: each upstream's mean learnt weight of every hidden state; False if none to plot."""
    tasks = sorted({task for up in upstreams.values() for task in up.weights})
    rows = [(name, up) for name, up in sorted(upstreams.items(), key=lambda kv: _order(kv[0])) if name != "fbank"]
    if not tasks or not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, up in rows:
            if task in up.weights:
                mean = [statistics.mean(ws) for ws in zip(*up.weights[task])]
                ax.plot(range(len(mean)), mean, marker="o", label=name)
        ax.set_title(f"{task}: learnt layer weights")
        ax.set_xlabel("hidden state (0: the first layer's input)")
        ax.set_ylabel("softmax weight")
        ax.legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return True
