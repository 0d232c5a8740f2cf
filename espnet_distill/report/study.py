"""The study's summary: one row per model and fine-tuning set, seeds pooled, and its comparisons.

Each fine-tuned experiment ``exp/asr_<model>_<set>`` is described from its own
files: the model's kind (the teacher, a distilled student, a structure from
scratch), its front-end, structure and loss (``student_source.json``, which the
ASR task writes from the student's files), its seed and fine-tuning set
(``config.yaml``), its parameters, and the CER/WER and decoding RTF of each
scored set.  Experiments of the same model and set with other seeds are
repeats: the summary gives their mean and sample standard deviation.

The plots of the summary are in :mod:`espnet_distill.report.plots`.
"""

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from espnet_distill.files.student_source import read_student_source
from espnet_distill.report.results import finetune_set, model_params

SEED = re.compile(r"^(?P<model>.+)_seed(?P<seed>\d+)$")


@dataclass
class Experiment:
    """One fine-tuned model: what it is and its scores per decoded set.

    What it is comes from the fine-tuning's ``student_source.json`` (written by the ASR task from the
    student's own files: kind, front-end, structure, loss).  Exp dirs written before that file existed
    fall back to the recipe's naming (``scratch_<config>``, ``<structure>_<loss>[_fbank]``).
    """

    model: str  # the exp dir's model name, e.g. deep_thin_reg_kl, scratch_deep_thin_reg_kl, teacher (no seed suffix)
    seed: int
    finetune_set: str
    frontend: str
    params: int
    scores: Dict[str, Dict] = field(default_factory=dict)  # decoded set -> score.json
    source: Optional[Dict[str, Any]] = None  # student_source.json, if the fine-tuning wrote one

    @property
    def kind(self) -> str:
        if self.source:
            return self.source["kind"]
        if self.model == "teacher":
            return "teacher"
        return "scratch" if self.model.startswith("scratch_") else "distilled"

    @property
    def structure(self) -> str:
        if self.source:
            st = self.source["structure"]
            return f"{st['num_layers']} x {st['output_size']}, FFN {st['ffn_dim']}"
        name = self.model[len("scratch_") :] if self.kind == "scratch" else self.model
        for structure in ("shallow_wide", "deep_thin"):
            if name.startswith(structure):
                return structure
        return "teacher" if self.kind == "teacher" else name

    @property
    def shape(self) -> Optional[Tuple[int, int]]:
        """(layers, width), when known from the files."""
        if not self.source:
            return None
        return self.source["structure"]["num_layers"], self.source["structure"]["output_size"]

    @property
    def loss(self) -> str:
        if self.kind != "distilled":
            return "-"
        if self.source:
            return self.source.get("loss") or "?"
        return "reg + KL" if "_reg_kl" in self.model else "reg"


def summary_decode(asr_exp: Path) -> str:
    """The decoding the summary reports for a model: greedy CTC when it was run, else the first beam search
    without the LM (the decodings with the LM have a section of their own)."""
    names = sorted(p.name for p in asr_exp.glob("decode_*") if p.is_dir() and "_lm" not in p.name)
    return "decode_ctc_greedy" if "decode_ctc_greedy" in names or not names else names[0]


def read_experiments(exp_root: Path) -> List[Experiment]:
    """Every ``exp/asr_*`` with at least one scored decoding."""
    experiments = []
    for asr_exp in sorted(p for p in exp_root.glob("asr_*") if p.is_dir()):
        decode = summary_decode(asr_exp)
        scores = {
            f.parent.name: json.loads(f.read_text(encoding="utf-8"))
            for f in sorted(asr_exp.glob(f"{decode}/*/score.json"))
        }
        if not scores:
            continue
        ftset = finetune_set(asr_exp)
        name = asr_exp.name[len("asr_") :]
        if name.endswith("_" + ftset):
            name = name[: -len(ftset) - 1]
        config = yaml.safe_load((asr_exp / "config.yaml").read_text(encoding="utf-8"))
        seed = int(config.get("seed", 0))
        source = read_student_source(asr_exp)
        if source is not None:
            if name.endswith(f"_seed{seed}"):  # a repeat's exp dir: grouped with the other seeds
                name = name[: -len(f"_seed{seed}")]
        else:
            match = SEED.match(name)
            if match:
                name, seed = match.group("model"), int(match.group("seed"))
        frontend = (source or {}).get("frontend") or config.get("frontend", "?")
        experiments.append(Experiment(name, seed, ftset, frontend, model_params(asr_exp), scores, source))
    return experiments


@dataclass
class Summary:
    """The experiments of one model and fine-tuning set, over seeds."""

    first: Experiment
    seeds: List[int]
    values: Dict[Tuple[str, str], List[float]]  # (set, "cer"/"wer"/"rtf") -> one value per seed

    def stat(self, dset: str, metric: str) -> Tuple[Optional[float], Optional[float]]:
        """Mean and sample standard deviation (None with one seed)."""
        values = self.values.get((dset, metric), [])
        if not values:
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarize(experiments: Sequence[Experiment]) -> List[Summary]:
    groups: Dict[Tuple[str, str], List[Experiment]] = {}
    for e in experiments:
        groups.setdefault((e.model, e.finetune_set), []).append(e)
    summaries = []
    for _, group in sorted(groups.items(), key=lambda kv: (kv[0][1], _order(kv[1][0]), kv[0][0])):
        values: Dict[Tuple[str, str], List[float]] = {}
        for e in group:
            for dset, s in e.scores.items():
                values.setdefault((dset, "cer"), []).append(s["cer"]["err"])
                values.setdefault((dset, "wer"), []).append(s["wer"]["err"])
                if "rtf" in s:
                    values.setdefault((dset, "rtf"), []).append(s["rtf"])
        summaries.append(Summary(group[0], sorted(e.seed for e in group), values))
    return summaries


def _order(e: Experiment) -> int:
    return {"teacher": 0, "distilled": 1, "scratch": 2}[e.kind]


def _cell(mean: Optional[float], std: Optional[float], digits: int = 1) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def render_summary(summaries: Sequence[Summary], dev: str, test: str) -> List[str]:
    """Markdown lines of the summary table."""
    header = [
        "model",
        "kind",
        "front-end",
        "loss",
        "params",
        "fine-tuning set",
        "seeds",
        f"{dev} CER",
        f"{test} CER",
        f"{dev} WER",
        f"{test} WER",
        f"RTF ({test})",
    ]
    lines = ["|" + "|".join(header) + "|", "|" + "|".join("---" for _ in header) + "|"]
    for s in summaries:
        e = s.first
        cells = [
            e.model,
            e.kind,
            e.frontend,
            e.loss,
            f"{e.params / 1e6:.2f} M",
            e.finetune_set,
            str(len(s.seeds)),
            _cell(*s.stat(dev, "cer")),
            _cell(*s.stat(test, "cer")),
            _cell(*s.stat(dev, "wer")),
            _cell(*s.stat(test, "wer")),
            _cell(*s.stat(test, "rtf"), digits=4),
        ]
        lines.append("|" + "|".join(cells) + "|")
    return lines


@dataclass
class Comparison:
    """Two models on one fine-tuning set that differ in one thing (``question``)."""

    question: str
    a: Summary
    b: Summary


def _deeper_and_thinner(e: Experiment, f: Experiment) -> bool:
    if e.shape and f.shape:
        return e.shape[0] > f.shape[0] and e.shape[1] < f.shape[1]
    return e.structure == "deep_thin" and f.structure == "shallow_wide"


def pairs(summaries: Sequence[Summary]) -> List[Comparison]:
    """The paper's comparisons among the summaries, each between two models fine-tuned on the same set that
    differ in one thing, told apart by their facts (kind, front-end, structure, loss):

    - loss: reg + KL against reg (same front-end and structure);
    - front-end: fbank against wav_cnn (same structure and loss);
    - structure: deeper and thinner against shallower and wider (same front-end and loss);
    - distillation: a student against its structure from scratch (same structure and front-end).
    """
    questions = {
        "reg + KL vs reg": lambda e, f: e.loss == "reg + KL"
        and f.loss == "reg"
        and e.structure == f.structure
        and e.frontend == f.frontend,
        "fbank vs wav_cnn": lambda e, f: e.frontend == "fbank"
        and f.frontend == "wav_cnn"
        and e.structure == f.structure
        and e.loss == f.loss,
        "deep-thin vs shallow-wide": lambda e, f: e.loss == f.loss
        and e.frontend == f.frontend
        and _deeper_and_thinner(e, f),
    }
    found = []
    for s in summaries:
        e = s.first
        if e.kind != "distilled":
            continue
        for question, same_but_one in questions.items():
            for t in summaries:
                f = t.first
                if t is not s and f.kind == "distilled" and f.finetune_set == e.finetune_set and same_but_one(e, f):
                    found.append(Comparison(question, s, t))
                    break
        for t in summaries:
            f = t.first
            if (
                f.kind == "scratch"
                and f.finetune_set == e.finetune_set
                and f.structure == e.structure
                and f.frontend == e.frontend
            ):
                found.append(Comparison("distilled vs from scratch", s, t))
                break
    order = ["reg + KL vs reg", "fbank vs wav_cnn", "deep-thin vs shallow-wide", "distilled vs from scratch"]
    return sorted(found, key=lambda c: (order.index(c.question), c.a.first.finetune_set, c.a.first.model))


def seed_spread(summaries: Sequence[Summary], dset: str, metric: str = "cer") -> Dict[str, float]:
    """Per fine-tuning set, the root mean square of the seed standard deviations of the repeated models."""
    variances: Dict[str, List[float]] = {}
    for s in summaries:
        _, std = s.stat(dset, metric)
        if std is not None:
            variances.setdefault(s.first.finetune_set, []).append(std**2)
    return {ftset: math.sqrt(statistics.fmean(v)) for ftset, v in variances.items()}


def judge(
    c: Comparison, dset: str, pooled: Dict[str, float], metric: str = "cer"
) -> Tuple[float, Optional[float], str]:
    """(difference of means a - b, the spread it must exceed, verdict).

    The spread is the sum of the two sides' seed standard deviations, each side's
    own where it has repeats, else the pooled one of its fine-tuning set; with
    neither, no spread is known and nothing is claimed.  Lower error is better.
    """
    (ma, sa), (mb, sb) = c.a.stat(dset, metric), c.b.stat(dset, metric)
    if ma is None or mb is None:
        return math.nan, None, "not scored"
    fallback = pooled.get(c.a.first.finetune_set)
    sa = sa if sa is not None else fallback
    sb = sb if sb is not None else fallback
    diff = ma - mb
    if sa is None or sb is None:
        return diff, None, "no seed spread measured"
    spread = sa + sb
    if abs(diff) <= spread:
        return diff, spread, "within the spread"
    return diff, spread, f"{(c.a if diff < 0 else c.b).first.model} better"


def render_comparisons(summaries: Sequence[Summary], dset: str, metric: str = "cer") -> List[str]:
    """Markdown lines: each comparison with its difference, the spread it is judged against, the verdict."""
    comparisons = pairs(summaries)
    if not comparisons:
        return []
    pooled = seed_spread(summaries, dset, metric)
    name = metric.upper()
    header = [
        "comparison",
        "fine-tuning set",
        "first",
        "second",
        f"first {dset} {name}",
        f"second {dset} {name}",
        "difference",
        "spread",
        "verdict",
    ]
    lines = ["|" + "|".join(header) + "|", "|" + "|".join("---" for _ in header) + "|"]
    for c in comparisons:
        diff, spread, verdict = judge(c, dset, pooled, metric)
        cells = [
            c.question,
            c.a.first.finetune_set,
            f"{c.a.first.model} ({len(c.a.seeds)})",
            f"{c.b.first.model} ({len(c.b.seeds)})",
            _cell(*c.a.stat(dset, metric)),
            _cell(*c.b.stat(dset, metric)),
            f"{diff:+.1f}",
            "-" if spread is None else f"{spread:.1f}",
            verdict,
        ]
        lines.append("|" + "|".join(cells) + "|")
    spread_note = ", ".join(f"{ftset} {v:.1f}" for ftset, v in sorted(pooled.items())) or "none measured"
    return lines + [
        "",
        f"(n): seeds.  Spread: the sum of both sides' seed standard deviations; a side without repeats "
        f"takes the pooled one of its fine-tuning set ({spread_note}).  A difference within it is not claimed.",
    ]
