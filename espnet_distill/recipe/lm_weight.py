"""Choose the LM weight of a fine-tuned model on the validation set; record it for the test decodings.

Reads ``<asr_exp>/<decode>/<valid_set>/score.json`` (the beam search without
the LM: weight 0) and ``<asr_exp>/<decode>_lm<w>/<valid_set>/score.json`` for
each weight of the grid, keeps the weight of the lowest error (``--metric``
cer or wer; a tie goes to the smaller weight, so the LM is used only where it
helps on the validation set), writes ``<asr_exp>/<decode>_lm/lm_weight.json``
and prints the weight.

``--name <w>`` only prints ``w`` as the decode dirs name it (``1`` -> ``1.0``).

Example:
    python -m espnet_distill.recipe.lm_weight --asr_exp exp/asr_x --decode decode_ctc_beam10 \\
        --valid_set dev --weights 0.2 0.4 0.6 --metric cer --lm exp/lm_char
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_distill.utils.cli import run
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)
RECORD = "lm_weight.json"


def weight_name(weight: float) -> str:
    """A weight as decode dirs name it (``0.5`` -> ``0.5``, ``1`` -> ``1.0``)."""
    return repr(float(weight))


def lm_decode_name(decode: str, weight: float) -> str:
    """The decode dir of ``decode``'s search fused with the LM at ``weight``."""
    return f"{decode}_lm{weight_name(weight)}"


def choose_weight(asr_exp: Path, decode: str, valid_set: str, weights: Sequence[float], metric: str) -> Dict:
    """The record of the grid's errors on ``valid_set`` and the chosen weight (0: without the LM)."""
    errors: Dict[str, float] = {}
    for weight in [0.0, *weights]:
        name = decode if weight == 0 else lm_decode_name(decode, weight)
        score_file = asr_exp / name / valid_set / "score.json"
        if not score_file.is_file():
            raise FileNotFoundError(
                f"{score_file}: the decoding of {valid_set} at LM weight {weight:g} has not been scored"
            )
        errors[weight_name(weight)] = float(json.loads(score_file.read_text(encoding="utf-8"))[metric]["err"])
    best = min(errors, key=lambda w: (errors[w], float(w)))
    return dict(decode=decode, valid_set=valid_set, metric=metric, errors=errors, weight=float(best))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", type=float, default=None, help="only print this weight as decode dirs name it")
    parser.add_argument("--asr_exp", type=Path)
    parser.add_argument("--decode", help="the decode dir of the beam search without the LM")
    parser.add_argument("--valid_set")
    parser.add_argument("--weights", type=float, nargs="+")
    parser.add_argument("--metric", choices=("cer", "wer"), default="cer")
    parser.add_argument("--lm", default=None, help="the LM's exp dir, recorded")
    args = parser.parse_args(argv)
    if args.name is not None:
        print(weight_name(args.name))
        return
    if None in (args.asr_exp, args.decode, args.valid_set, args.weights):
        parser.error("--asr_exp, --decode, --valid_set and --weights are required (unless --name)")
    setup_logging()
    try:
        record = choose_weight(args.asr_exp, args.decode, args.valid_set, args.weights, args.metric)
    except (FileNotFoundError, KeyError, ValueError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    record["lm"] = args.lm
    out = args.asr_exp / f"{args.decode}_lm" / RECORD
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:
        f.write(json.dumps(record, indent=1) + "\n")
    errors = ", ".join(f"{w}: {e:.2f}" for w, e in record["errors"].items())
    logger.info(
        "%s: %s on %s by LM weight (%s): %g",
        args.asr_exp,
        args.metric.upper(),
        args.valid_set,
        errors,
        record["weight"],
    )
    print(weight_name(record["weight"]))


if __name__ == "__main__":
    run(main)
