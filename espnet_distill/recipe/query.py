"""Print one value of a YAML or JSON file: how the recipe scripts read a config or a result.

The key is dotted: each part is a key of a mapping or the index of a list
(``models.0.name``).  A string prints as it is; any other value (a number,
true/false, null, a list, a mapping) prints as JSON.  A missing key is an
error naming the file and the key (exit 1), unless ``--default`` gives the
value to print instead.  A ``.json`` file is read as JSON, any other file as
YAML.

Examples:
    python -m espnet_distill.recipe.query conf/distill/deep_thin_reg_kl.yaml frontend
    python -m espnet_distill.recipe.query --default "" exp/distill_x/student.yaml frontend
    python -m espnet_distill.recipe.query exp/deploy/benchmark/deploy.json models.0.model
"""

import argparse
import json
from pathlib import Path
from typing import Any, List, Optional

import yaml

from espnet_distill.utils.cli import UserError, run


def load(path: Path) -> Any:
    """The parsed content of a JSON (``.json``) or YAML file."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise UserError(f"{path}: not valid {kind}: {' '.join(str(e).split())}") from e


_MISSING = object()


def lookup(data: Any, key: str) -> Any:
    """The value at the dotted ``key`` of ``data``, or ``_MISSING``."""
    value = data
    for part in key.split("."):
        if isinstance(value, dict):
            if part in value:
                value = value[part]
            elif part.lstrip("-").isdigit() and int(part) in value:
                value = value[int(part)]
            else:
                return _MISSING
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def as_text(value: Any) -> str:
    """A string as it is; anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a YAML or JSON file")
    parser.add_argument("key", help="dotted key, e.g. frontend or encoder_conf.num_layers")
    parser.add_argument("--default", default=None, help="printed when the key is missing (default: an error)")
    args = parser.parse_args(argv)
    value = lookup(load(args.file), args.key)
    if value is _MISSING:
        if args.default is None:
            raise UserError(f"{args.file}: no key {args.key!r}")
        value = args.default
    print(as_text(value))


if __name__ == "__main__":
    run(main)
