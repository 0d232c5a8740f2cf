"""Write the learnt layer weights of a frozen-upstream model (``frontend: upstream``) to JSON.

``<exp_dir>/layer_weights.json``: ``{"upstream": <its path>, "random_init": <bool>,
"upstream_params": <the frozen upstream's float tensors, as RESULTS.md counts a model; 0 for fbank>,
"weights": [<softmax weight of hidden state 0 (the first layer's input)>, <of layer 1>, ...]}``,
from the model file decoding uses (:func:`~espnet_distill.utils.checkpoint.preferred_model_file`).  The
report plots them per upstream.

Example:
    python -m espnet_distill.recipe.layer_weights exp/superb_asr_teacher_seed1
"""

import argparse
import json
import logging
from pathlib import Path
from typing import List, Optional

from espnet_distill.superb.featurizer import layer_weights_of
from espnet_distill.utils.checkpoint import CheckpointError, preferred_model_file, trained_state
from espnet_distill.utils.cli import run
from espnet_distill.utils.config import ConfigError, read_yaml_file
from espnet_distill.utils.fileio import atomic_write
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)

FILE_NAME = "layer_weights.json"
UPSTREAM = "frontend.upstream."


def write_layer_weights(exp_dir: Path) -> Path:
    config = read_yaml_file(exp_dir / "config.yaml")
    if not isinstance(config, dict) or config.get("frontend") != "upstream":
        raise ConfigError(f"{exp_dir}/config.yaml: not a frozen-upstream model (frontend: upstream)")
    frontend_conf = config.get("frontend_conf") or {}
    model_file = preferred_model_file(exp_dir)
    state = trained_state(model_file)
    try:
        weights = layer_weights_of(state)
    except KeyError as e:
        raise CheckpointError(f"{model_file}: {e.args[0]}") from e
    upstream = str(frontend_conf.get("upstream"))
    params = sum(v.numel() for k, v in state.items() if k.startswith(UPSTREAM) and v.is_floating_point())
    record = dict(
        upstream=upstream,
        random_init=bool(frontend_conf.get("random_init", False)),
        upstream_params=0 if upstream == "fbank" else params,
        model=model_file.name,
        weights=[round(w, 6) for w in weights],
    )
    with atomic_write(exp_dir / FILE_NAME) as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return exp_dir / FILE_NAME


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="a fine-tuning exp dir of a frontend: upstream model")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        out = write_layer_weights(args.exp_dir)
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        logger.error("%s", e)
        raise SystemExit(1) from e
    logger.info("wrote %s", out)


if __name__ == "__main__":
    run(main)
