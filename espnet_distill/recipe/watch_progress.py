"""Show the progress of a stage's training jobs on the console until they are done (or this is killed).

Each exp dir's job writes ``progress.json`` (see :mod:`espnet_distill.utils.progress`); this prints,
for each job, its step out of the total, its latest loss and its ETA, and the stage's ETA: a tqdm bar
per job when the console is a terminal, else one line every ``--interval`` seconds.  The recipes run
it beside their training jobs (``run_train_jobs`` in ``egs/TEMPLATE/asr1/utils/train_jobs.sh``).

    python -m espnet_distill.recipe.watch_progress --label "Stage 7" --parallel 2 exp/asr_a exp/asr_b
"""

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional

from espnet_distill.utils.cli import run
from espnet_distill.utils.progress import duration, watch


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", type=Path, nargs="+", help="the exp dirs of the stage's training jobs")
    parser.add_argument("--label", default="training", help="what the lines start with, e.g. the stage")
    parser.add_argument("--parallel", type=int, default=1, help="jobs that run side by side")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between lines (not on a terminal)")
    parser.add_argument("--parent", type=int, default=None, help="stop when this process is gone (the stage's shell)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the stage stops it when its jobs end
    started = time.time()
    states = watch(args.label, args.dirs, args.parallel, args.interval, parent=args.parent)
    if not all(s.done for s in states):
        return
    print(f"{args.label}: {len(states)} training job(s) done in {duration(time.time() - started)}")


if __name__ == "__main__":
    run(main)
