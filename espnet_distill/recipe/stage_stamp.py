"""Record what produced a stage's output and decide whether a rerun must redo it.

``begin`` prints one line, ``run: <why>`` or ``skip: <why>``, and when the
stage runs records the inputs it runs with in ``<out_dir>/.stage_inputs.json``
(``check`` only decides);
``finish`` marks that run finished (after the stage succeeded) and gives it a
run id, which ``run_id`` prints (a downstream step's input).  See
:mod:`espnet_distill.utils.provenance`.

Example (a recipe stage):
    decision=$(python -m espnet_distill.recipe.stage_stamp begin exp/distill_x --clear true \\
        --input config=conf/distill/x.yaml --input teacher=exp/teacher/teacher.yaml \\
        --arg distill_args="${distill_args}" --output exp/distill_x/student.pth)
    ... run the stage if ${decision} starts with "run:" ...
    python -m espnet_distill.recipe.stage_stamp finish exp/distill_x
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet_distill.utils.cli import run
from espnet_distill.utils.config import str2bool
from espnet_distill.utils.provenance import begin, finish, read_stamp


def _pair(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _pairs(items: List[Tuple[str, str]], what: str) -> Dict[str, str]:
    result: Dict[str, str] = {}
    for name, value in items:
        if name in result:
            raise SystemExit(f"stage_stamp: {what} {name!r} given twice")
        result[name] = value
    return result


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--input",
        type=_pair,
        action="append",
        default=[],
        metavar="ROLE=PATH",
        help="a file (or directory) the stage reads",
    )
    parser.add_argument(
        "--arg",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an argument that changes the result",
    )
    parser.add_argument("--output", type=Path, action="append", default=[], help="a file a finished run must have left")
    parser.add_argument(
        "--clear", type=str2bool, default=False, help="on changed inputs, remove the stale outputs (logs kept)"
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("begin", help="decide; when the stage runs, record its inputs")
    check = sub.add_parser("check", help="only decide: nothing is written or removed")
    for command in (start, check):
        add_decision_arguments(command)
    done = sub.add_parser("finish", help="mark the recorded run finished")
    done.add_argument("out_dir", type=Path)
    run_id = sub.add_parser("run_id", help="print the id of the finished run recorded in out_dir ('none' if none)")
    run_id.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command in ("begin", "check"):
        decision = begin(
            args.out_dir,
            _pairs(args.arg, "--arg"),
            _pairs(args.input, "--input"),
            args.output,
            args.clear,
            record=args.command == "begin",
        )
        print(decision)
    elif args.command == "run_id":
        record = read_stamp(args.out_dir) or {}
        print((record.get("finished") or {}).get("run_id", "none"))
    else:
        try:
            finish(args.out_dir)
        except FileNotFoundError as e:
            print(f"stage_stamp: {e}", file=sys.stderr)
            raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
