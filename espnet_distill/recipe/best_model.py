"""Print the name of the model with the lowest CER among fine-tunings, from their score.json.

    python -m espnet_distill.recipe.best_model --exp_dir exp --set dev --finetune_set train \\
        --decode decode_ctc_greedy deep_thin_reg_kl deep_thin_reg_kl_fbank
prints e.g. ``deep_thin_reg_kl_fbank`` (the one whose exp/asr_<name>_train/decode_ctc_greedy/dev/score.json
has the lowest CER); exits 1 naming the missing files when none has been scored.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from espnet_distill.utils.cli import run


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="model names (exp/asr_<name>_<finetune_set>)")
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument("--finetune_set", required=True)
    parser.add_argument("--set", required=True, help="the decoded set that decides (e.g. dev)")
    parser.add_argument("--decode", default="decode_ctc_greedy")
    args = parser.parse_args(argv)
    scored, missing = {}, []
    for name in args.names:
        path = args.exp_dir / f"asr_{name}_{args.finetune_set}" / args.decode / args.set / "score.json"
        if path.is_file():
            scored[name] = json.loads(path.read_text(encoding="utf-8"))["cer"]["err"]
        else:
            missing.append(str(path))
    if not scored:
        print(f"best_model: none scored: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(1)
    print(min(scored, key=lambda n: (scored[n], n)))


if __name__ == "__main__":
    run(main)
