"""Write a pruned structure drawn at random to a target size (``espnet_distill/prune/draw.py``): a
description YAML for the benchmarks, e.g. HuBERT Base pruned to DPHuBERT's 23.6 M where no pruning run's
gates exist.  The structure is what a pruning run would export at that size with gates drawn at random
(stated as such in every table it is timed in), not a trained one.

Example (the mini recipe's conf/benchmark/paper_dphubert_drawn.yaml):
    python -m espnet_distill.bin.draw_pruned conf/benchmark/paper_hubert_base.yaml \\
        --target_ratio 0.25 --out conf/benchmark/paper_dphubert_drawn.yaml
"""

import argparse
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_distill.prune.draw import drawn_structure
from espnet_distill.prune.gates import FRONTEND_UNITS, UNITS
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import read_yaml_file
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("description", type=Path, help="the unpruned structure (a student.yaml-style YAML)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target_params", type=int, help="the pruned size (front-end + encoder)")
    target.add_argument("--target_ratio", type=float, help="the pruned size as a fraction of the unpruned one")
    parser.add_argument("--units", nargs="+", default=list(FRONTEND_UNITS + UNITS), choices=FRONTEND_UNITS + UNITS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(level="WARNING")
    description = read_yaml_file(args.description)
    pruned, size = drawn_structure(description, args.units, args.target_params, args.target_ratio, args.seed)
    target_text = (
        f"--target_params {args.target_params}" if args.target_ratio is None else f"--target_ratio {args.target_ratio}"
    )
    header = (
        f"# {args.description.name} pruned at random to {size / 1e6:.2f} M parameters (front-end + encoder):\n"
        f"# gates drawn with seed {args.seed}, not trained (espnet_distill/prune/draw.py).  Written by\n"
        f"#   python -m espnet_distill.bin.draw_pruned {args.description.name} {target_text} "
        f"--units {' '.join(args.units)} --seed {args.seed}\n"
    )
    with atomic_write(args.out) as f:
        f.write(header + yaml.safe_dump(pruned, sort_keys=False, default_flow_style=None, width=120))
    print(f"{args.out}: {size} parameters")


if __name__ == "__main__":
    run(main)
