"""Regenerate RESULTS.md from the experiment directories (``exp/asr_*/decode_*/<set>/score.json``).

Example:
    python -m espnet_distill.bin.make_results --exp_dir exp --sets test dev --out RESULTS.md
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.scoring.results import collect, render
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument("--sets", nargs="+", default=["test"], help="evaluation sets, in table order")
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    args = parser.parse_args(argv)
    setup_logging()
    rows = collect(args.exp_dir)
    extra = []
    benchmark = args.exp_dir / "benchmark" / "benchmark.md"
    if benchmark.is_file():  # from python -m espnet_distill.bin.benchmark
        extra = ["## Size and speed (front-end + encoder)", "", *benchmark.read_text(encoding="utf-8").splitlines(), ""]
    text = render(rows, args.sets, extra)
    with atomic_write(args.out) as f:
        f.write(text)
    logging.info("%s: %d tables", args.out, 2 * len(rows))


if __name__ == "__main__":
    main()
