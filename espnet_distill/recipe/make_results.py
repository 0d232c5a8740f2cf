"""Regenerate RESULTS.md and its plots from the experiment directories alone.

RESULTS.md starts with the summary (one row per model and fine-tuning set,
mean and spread over ``_seed<N>`` repeats), the paper's comparisons judged
against the seed spread, and its plots (``--plot_dir``: test
CER against parameters and against decoding RTF, the distillation loss terms
per epoch), then ESPnet's WER and CER tables of every scored set
(``exp/asr_*/decode_*/<set>/score.json``), the benchmark table, stage 10's
deployment tables (``exp/deploy``), the structures of the pruned students
(``exp/distill_*/student.yaml`` with per-layer sizes), the decodings without and
with the language model (``exp/asr_*/decode_*_lm/lm_weight.json``) and stage 11's SUPERB
table of frozen upstreams (``exp/superb_*``) with the plot of their learnt
layer weights.

Example:
    python -m espnet_distill.recipe.make_results --exp_dir exp --sets test dev --train_set train --out RESULTS.md
"""

import argparse
import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_distill.files.onnx_dir import META_NAME, read_meta
from espnet_distill.recipe.lm_weight import lm_decode_name
from espnet_distill.report import study
from espnet_distill.report.plots import distill_curves, plot_distill_curves, plot_error
from espnet_distill.report.results import collect, render
from espnet_distill.report.superb import DEFAULT_TRAIN_SET, plot_layer_weights, read_superb, render_superb
from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


def deployment_section(deploy_dir: Path) -> List[str]:
    """Stage 10's exports (``<deploy_dir>/<name>/model.json``: parity and CER of each backend) and its
    timing table (``<deploy_dir>/benchmark/deploy.md``), or nothing."""
    lines = []
    for onnx_dir in sorted(path.parent for path in deploy_dir.glob(f"*/{META_NAME}")):
        parity = read_meta(onnx_dir).get("parity") or {}
        cer = parity.get("cer") or {}
        if {"pytorch", "onnx_fp32", "onnx_int8"} <= set(cer):
            n = parity["utterances"]
            lines.append(
                f"| {onnx_dir.name} | {n} | {cer['pytorch']:.1f} | {cer['onnx_fp32']:.1f} | {cer['onnx_int8']:.1f} | "
                f"{cer['onnx_int8'] - cer['pytorch']:+.1f} | {parity['max_abs_diff']:.1e} | "
                f"{parity['identical_hypotheses']}/{n} | {parity['int8_identical_hypotheses']}/{n} |"
            )
    if lines:
        lines = [
            "| model | utts | PyTorch CER | ONNX fp32 CER | ONNX int8 CER | int8 - PyTorch | fp32 max abs diff "
            "| greedy = PyTorch (fp32) | greedy = PyTorch (int8) |",
            "|" + "---|" * 9,
            *lines,
        ]
    table = deploy_dir / "benchmark" / "deploy.md"
    if table.is_file():
        lines += [
            "",
            "Size on disk and real-time factor at batch 1 (whole inference path, waveform to CTC log-probabilities):",
            "",
            *table.read_text(encoding="utf-8").splitlines(),
        ]
    return ["## Deployment (stage 10: ONNX export, int8)", "", *lines, ""] if lines else []


def pruned_section(exp_dir: Path) -> List[str]:
    """The structures of the pruned students (``exp/distill_*/student.yaml`` with per-layer sizes), or nothing."""
    rows = []
    for description_file in sorted(exp_dir.glob("distill_*/student.yaml")):
        description = yaml.safe_load(description_file.read_text(encoding="utf-8")) or {}
        encoder = description.get("encoder_conf") or {}
        if "layer_heads" not in encoder:
            continue
        config_file = description_file.parent / "config.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        kind = "pruning run" if (config.get("model_conf") or {}).get("prune_conf") else "distilled again"
        channels = [layer[0] for layer in (description.get("frontend_conf") or {}).get("conv_layers") or []]
        params = (description.get("params") or {}).get("total", 0)
        rows.append(
            f"|{description_file.parent.name[len('distill_') :]}|{kind}|{params / 1e6:.2f} M|"
            f"{' '.join(map(str, channels)) or '-'}|{' '.join(map(str, encoder['layer_heads']))}|"
            f"{' '.join(map(str, encoder.get('layer_ffn_dims') or []))}|"
        )
    if not rows:
        return []
    return [
        "## Pruned students (DPHuBERT): what the gates kept",
        "",
        "Each convolution's channels (the last is not gated), each layer's attention heads and feed-forward "
        "units, from each exp dir's student.yaml; the final distillation keeps its pruning run's structure.",
        "",
        "|student|step|params|CNN channels|heads per layer|FFN units per layer|",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _score(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def lm_section(exp_dir: Path, test_sets: List[str]) -> List[str]:
    """Each model decoded without and with the LM (``<decode>_lm/lm_weight.json``, stage 8 with --use_lm true):
    the weight chosen on the validation set, the test errors and the decoding RTF of both, or nothing."""
    rows = []
    for record_file in sorted(exp_dir.glob("asr_*/decode_*_lm/lm_weight.json")):
        record = json.loads(record_file.read_text(encoding="utf-8"))
        asr_exp, plain = record_file.parent.parent, record["decode"]
        fused = plain if record["weight"] == 0 else lm_decode_name(plain, record["weight"])
        grid = " ".join(f"{w}: {e:.1f}" for w, e in record["errors"].items())
        for test in test_sets:
            without, with_lm = (
                _score(asr_exp / plain / test / "score.json"),
                _score(asr_exp / fused / test / "score.json"),
            )
            if without is None or with_lm is None:
                continue
            rows.append(
                f"|{asr_exp.name[len('asr_') :]}|{test}|{record['weight']:g}|{grid}|"
                f"{without['cer']['err']:.1f}|{with_lm['cer']['err']:.1f}|{without['wer']['err']:.1f}|"
                f"{with_lm['wer']['err']:.1f}|{without['rtf']:.4f}|{with_lm['rtf']:.4f}|"
            )
    if not rows:
        return []
    lms = []
    for ppl_file in sorted(exp_dir.glob("lm_*/perplexity.json")):
        ppl = json.loads(ppl_file.read_text(encoding="utf-8"))
        lms.append(
            f"{ppl_file.parent.name}: perplexity {ppl['perplexity']:.3f} on {ppl['valid_text']} ({ppl['tokens']} tokens)"
        )
    return [
        "## Shallow fusion with the language model",
        "",
        f"CTC prefix beam search ({plain.split('_')[-1]}) without and with the LM ({'; '.join(lms) or 'its exp dir'}); "
        f"the LM weight is the one of lowest {record['metric'].upper()} on {record['valid_set']} among the grid "
        "(0: none helped). RTF: decoding seconds per second of audio, 1 thread per job.",
        "",
        "|model|set|LM weight|valid error by weight|CER|CER, LM|WER|WER, LM|RTF|RTF, LM|",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def superb_section(exp_dir: Path, dev: str, test: str, plot_dir: Path, out_dir: Path) -> List[str]:
    """Stage 11's table and layer-weight plot, or nothing."""
    runs = read_superb(exp_dir)
    if not runs:
        return []
    lines = [
        "## SUPERB-style evaluation of frozen upstreams (stage 11)",
        "",
        "Each upstream frozen; a learnt weighted sum of its hidden layers into the same small downstream "
        "(conf/superb/); error rates in %, greedy CTC, mean ± standard deviation over the downstream's seeds.",
        "",
    ]
    for train_set in sorted(runs):  # the recipe's training set ("") first
        if train_set:
            lines += [f"Downstreams trained on {train_set}:", ""]
        lines += [*render_superb(runs[train_set], dev, test), ""]
    # The recipe's training set, or the first there is (LibriSpeech's SUPERB trains on train_clean_100).
    upstreams = runs.get(DEFAULT_TRAIN_SET) or runs[sorted(runs)[0]]
    if plot_layer_weights(upstreams, plot_dir / "superb_layer_weights.png"):
        lines += [f"![superb_layer_weights]({os.path.relpath(plot_dir, out_dir)}/superb_layer_weights.png)", ""]
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument("--sets", nargs="+", default=["test"], help="evaluation sets, in table order")
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--train_set", default="train", help="the full labelled set (others are marked low-resource)")
    parser.add_argument(
        "--plot_dir", type=Path, default=None, help="where the PNG plots go (default: plots/ beside --out)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    rows = collect(args.exp_dir)
    plot_dir = args.plot_dir or args.out.parent / "plots"
    test, dev = args.sets[0], args.sets[-1]
    summaries = study.summarize(study.read_experiments(args.exp_dir))
    head = []
    if summaries:
        head = ["## Summary", "", *study.render_summary(summaries, dev, test), ""]
        comparisons = study.render_comparisons(summaries, test)
        if comparisons:
            head += ["## Comparisons", "", *comparisons, ""]
        plot_error(summaries, "params", test, args.train_set, plot_dir / "error_vs_params.png")
        plot_error(summaries, "rtf", test, args.train_set, plot_dir / "error_vs_rtf.png")
        # The curves of each distillation config, its repeats (_seed<N>) left out.
        curves = {
            p.name[len("distill_") :]: distill_curves(p)
            for p in sorted(args.exp_dir.glob("distill_*"))
            if (p / "checkpoint.pth").is_file() and not study.SEED.match(p.name)
        }
        plots = ["error_vs_params.png", "error_vs_rtf.png"]
        if curves:
            plot_distill_curves(curves, plot_dir / "distill_losses.png")
            plots.append("distill_losses.png")
        relative = os.path.relpath(plot_dir, args.out.parent)
        head += [f"![{name[:-4]}]({relative}/{name})" for name in plots] + [""]
    extra = []
    benchmark = args.exp_dir / "benchmark" / "benchmark.md"
    if benchmark.is_file():  # from python -m espnet_distill.bin.benchmark
        extra = ["## Size and speed (front-end + encoder)", "", *benchmark.read_text(encoding="utf-8").splitlines(), ""]
    extra += pruned_section(args.exp_dir)
    extra += lm_section(args.exp_dir, [s for s in args.sets if s != dev] or [test])
    extra += deployment_section(args.exp_dir / "deploy")
    extra += superb_section(args.exp_dir, dev, test, plot_dir, args.out.parent)
    text = render(rows, args.sets, extra, head)
    with atomic_write(args.out) as f:
        f.write(text)
    logger.info("%s: %d tables", args.out, 2 * len(rows))


if __name__ == "__main__":
    run(main)
