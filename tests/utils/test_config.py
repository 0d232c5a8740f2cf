import argparse

import pytest

from espnet_distill.utils.config import ConfigError, parse_with_config, str2bool


def make_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_mel_bins", type=int, default=80)
    parser.add_argument("--dither", type=float, default=0.0)
    parser.add_argument("--snip_edges", type=str2bool, default=True)
    parser.add_argument("--name", type=str, default="x")
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 8])
    return parser


def test_yaml_sets_defaults_and_command_line_overrides(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("num_mel_bins: 40\ndither: 1\nsnip_edges: false\nlayers: [1, 2, 3]\n")
    args = parse_with_config(make_parser(), ["--config", str(conf), "--num_mel_bins", "64"])
    assert args.num_mel_bins == 64
    assert args.dither == 1.0 and isinstance(args.dither, float)
    assert args.snip_edges is False
    assert args.layers == [1, 2, 3]


@pytest.mark.parametrize(
    "text, message",
    [
        ("num_mel_bin: 40\n", "unknown key 'num_mel_bin'"),
        ("num_mel_bins: 40.5\n", "num_mel_bins must be int"),
        ("num_mel_bins: true\n", "num_mel_bins must be int"),
        ("snip_edges: 'yes'\n", "snip_edges must be true or false"),
        ("name: 3\n", "name must be a string"),
        ("layers: 4\n", "layers must be a list"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_yaml_is_rejected_with_the_key(tmp_path, text, message):
    conf = tmp_path / "c.yaml"
    conf.write_text(text)
    with pytest.raises(ConfigError, match=message):
        parse_with_config(make_parser(), ["--config", str(conf)])


def test_str2bool():
    assert str2bool("True") is True and str2bool("false") is False
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("maybe")
