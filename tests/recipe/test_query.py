"""query: one value of a YAML or JSON file, for the recipe scripts."""

import subprocess
import sys

import pytest

from espnet_distill.recipe.query import main

CONFIG = """\
# a distillation config
frontend: fbank   # a comment after the value
encoder_conf:
    num_layers: 4
    dropout: 0.1
init_from_teacher: [frontend, encoder]
flag: true
empty:
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize(
    "key, expected",
    [
        ("frontend", "fbank"),
        ("encoder_conf.num_layers", "4"),
        ("encoder_conf.dropout", "0.1"),
        ("init_from_teacher.1", "encoder"),
        ("init_from_teacher", '["frontend", "encoder"]'),
        ("encoder_conf", '{"num_layers": 4, "dropout": 0.1}'),
        ("flag", "true"),
        ("empty", "null"),
    ],
)
def test_prints_the_value_at_a_dotted_key(config, capsys, key, expected):
    main([str(config), key])
    assert capsys.readouterr().out == expected + "\n"


def test_reads_json(tmp_path, capsys):
    path = tmp_path / "deploy.json"
    path.write_text('{"models": [{"model": "deep_thin_reg_kl", "rtf": {"a": 0.5}}]}')
    main([str(path), "models.0.model"])
    main([str(path), "models.0.rtf.a"])
    assert capsys.readouterr().out == "deep_thin_reg_kl\n0.5\n"


def test_default_stands_for_a_missing_key(config, capsys):
    main(["--default", "", str(config), "no_such_key"])
    main(["--default", "wav_cnn", str(config), "frontend"])
    assert capsys.readouterr().out == "\nfbank\n"


def _query(*args):
    return subprocess.run(
        [sys.executable, "-m", "espnet_distill.recipe.query", *args], capture_output=True, text=True, timeout=60
    )


def test_a_missing_key_or_file_is_one_line_naming_both(config, tmp_path):
    for key in ("encoder_conf.num_heads", "frontend.x", "init_from_teacher.2", "encoder_conf.num_layers.0"):
        result = _query(str(config), key)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr == f"query: error: {config}: no key '{key}'\n"
    result = _query(str(tmp_path / "missing.yaml"), "frontend")
    assert result.returncode == 1 and "missing.yaml" in result.stderr and len(result.stderr.splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _query(str(bad), "a")
    assert result.returncode == 1 and result.stderr.startswith(f"query: error: {bad}: not valid JSON")
