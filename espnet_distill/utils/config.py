"""Argparse with YAML configs: YAML keys are argparse defaults, checked strictly.

``--config conf/x.yaml`` sets defaults; command-line options override them.
Unknown keys and values of the wrong type are errors; nothing is ``eval``-ed.
"""

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from espnet_distill.seams import argparse_actions


class ConfigError(ValueError):
    """A configuration file has an unknown key or a value of the wrong type."""


def str2bool(value: str) -> bool:
    """Parse ``true``/``false`` (any case) strictly."""
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def positive_int(value: str) -> int:
    """An argparse type: an integer of at least 1 (threads, beams, batch sizes)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def read_yaml_file(path: Path) -> Any:
    """The YAML document of ``path`` as it is; a :class:`ConfigError` naming the file if it cannot be read or
    parsed.  What it must hold is the caller's to check."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read it: {' '.join(str(e).split())}") from e


def load_yaml(path: Path) -> Dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _check_value(path: Path, action: argparse.Action, value: Any) -> Any:
    """Convert a YAML value with the option's type, or raise naming the key."""
    key = action.dest
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{path}: {key}={value!r} is not one of {list(action.choices)}")
    if value is None or action.type is None:
        return value
    if action.nargs in ("*", "+") or isinstance(action.nargs, int):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {key} must be a list, got {value!r}")
        return [_convert(path, key, action.type, v) for v in value]
    return _convert(path, key, action.type, value)


def _convert(path: Path, key: str, type_: Any, value: Any) -> Any:
    if type_ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_ in (int, float) and (isinstance(value, bool) or not isinstance(value, type_)):
        raise ConfigError(f"{path}: {key} must be {type_.__name__}, got {value!r}")
    if type_ is str and not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string, got {value!r}")
    if type_ is str2bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    try:
        return type_(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
        raise ConfigError(f"{path}: {key}={value!r}: {e}") from e


def parse_with_config(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv``; a ``--config`` YAML file supplies the defaults."""
    if not any(a.dest == "config" for a in argparse_actions(parser)):
        parser.add_argument("--config", type=Path, help="YAML file of default options")
    args, _ = parser.parse_known_args(argv)
    if args.config is not None:
        actions = {a.dest: a for a in argparse_actions(parser)}
        defaults = {}
        for key, value in load_yaml(args.config).items():
            if key not in actions or key in ("help", "config"):
                raise ConfigError(f"{args.config}: unknown key {key!r}")
            defaults[key] = _check_value(args.config, actions[key], value)
        parser.set_defaults(**defaults)
    return parser.parse_args(argv)
