"""The study's plots (PNG, matplotlib) and the distillation curves they draw.

Test error against parameters and against decoding RTF, one point per model and fine-tuning
set (full and low-resource sets marked differently); and the distillation loss terms of each
``exp/distill_<config>`` per epoch, read from its ``checkpoint.pth`` (ESPnet's reporter state,
loaded without unpickling code).
"""

import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from espnet_distill.report.study import Summary
from espnet_distill.utils.checkpoint import load_checkpoint, training_checkpoint_globals

LOSS_TERMS = ("loss", "regression", "discriminative", "l1_frontend")
KIND_COLORS = {"teacher": "black", "distilled": "tab:blue", "scratch": "tab:gray"}
FRONTEND_MARKERS = {"wav_cnn": "o", "fbank": "s"}


def distill_curves(distill_exp: Path) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """``{"train"|"valid": {term: [(epoch, value), ...]}}`` from the reporter state of ``checkpoint.pth``."""
    state = load_checkpoint(distill_exp / "checkpoint.pth", extra_globals=training_checkpoint_globals())
    stats = state["reporter"]["stats"]
    curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = {"train": {}, "valid": {}}
    for epoch in sorted(stats):
        for mode in ("train", "valid"):
            for key, value in stats[epoch].get(mode, {}).items():
                if key in LOSS_TERMS or key.startswith(("l1_", "cos_")):
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        curves[mode].setdefault(key, []).append((int(epoch), float(value)))
    return curves


def plot_error(summaries: Sequence[Summary], x: str, test: str, full_set: str, out: Path) -> None:
    """Test CER against ``x`` ("params" or "rtf"): one point per model and fine-tuning set.

    One panel per fine-tuning set (the full set first), low-resource points hollow;
    colour is the model's kind, marker shape its front-end, bars the seed spread.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ftsets = sorted({s.first.finetune_set for s in summaries}, key=lambda f: (f != full_set, f))
    fig, axes = plt.subplots(1, len(ftsets), figsize=(6.5 * len(ftsets), 5), squeeze=False)
    for ax, ftset in zip(axes.flat, ftsets):
        low = ftset != full_set
        for s in summaries:
            e = s.first
            mean, std = s.stat(test, "cer")
            if mean is None or e.finetune_set != ftset:
                continue
            xv = e.params / 1e6 if x == "params" else s.stat(test, "rtf")[0]
            if xv is None:
                continue
            ax.errorbar(
                xv,
                mean,
                yerr=std,
                fmt=FRONTEND_MARKERS.get(e.frontend, "^"),
                color=KIND_COLORS[e.kind],
                markerfacecolor="none" if low else KIND_COLORS[e.kind],
                markersize=8,
                capsize=3 if std else 0,
            )
            ax.annotate(
                e.model.replace("scratch_", "scratch "),
                (xv, mean),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=6,
            )
        ax.set_title(f"fine-tuned on {ftset}" + (" (low-resource)" if low else ""), fontsize=10)
        ax.set_xlabel("parameters (M)" if x == "params" else f"decoding real-time factor ({test})")
        ax.set_ylabel(f"{test} CER (%)")
        if x == "rtf":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=k) for k, c in KIND_COLORS.items()]
    handles += [plt.Line2D([], [], color="gray", marker=m, linestyle="", label=f) for f, m in FRONTEND_MARKERS.items()]
    handles += [
        plt.Line2D([], [], color="gray", marker="o", linestyle="", label=f"fine-tuned on {full_set}"),
        plt.Line2D([], [], color="gray", marker="o", markerfacecolor="none", linestyle="", label="low-resource"),
    ]
    axes.flat[0].legend(handles=handles, fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_distill_curves(curves: Dict[str, Dict[str, Dict[str, List[Tuple[int, float]]]]], out: Path) -> None:
    """One panel per distillation experiment: its loss terms per epoch (dev; stage A's L1 on train)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(curves)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for term in ("regression", "discriminative", "loss"):
            points = curves[name]["valid"].get(term)
            if points:
                ax.plot(*zip(*points), marker=".", label=f"dev {term}")
        points = curves[name]["train"].get("l1_frontend")
        if points:
            ax.plot(*zip(*points), marker=".", linestyle="--", label="train l1_frontend (stage A)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
