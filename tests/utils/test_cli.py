"""The one error path of the entry points (espnet_distill.utils.cli)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from espnet_distill.utils.cli import UserError, check_output_dir, check_output_file


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "tool.py"
    script.write_text(
        "import sys\nfrom espnet_distill.utils.cli import UserError, run\n\n" + textwrap.dedent(body) + "\nrun(main)\n",
        encoding="utf-8",
    )
    return script


def _call(script: Path, *args: str, stdin_pipe: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)


def test_a_user_error_is_one_line_naming_it_and_exit_1(tmp_path):
    script = _script(tmp_path, 'def main(argv):\n    raise UserError("data/x/wav.scp: line 3: no path")\n')
    result = _call(script)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["tool: error: data/x/wav.scp: line 3: no path"]
    assert "Traceback" not in result.stderr


def test_a_missing_file_names_the_file(tmp_path):
    script = _script(tmp_path, 'def main(argv):\n    open("/nonexistent/model.json")\n')
    result = _call(script)
    assert result.returncode == 1
    assert "/nonexistent/model.json" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback_and_is_not_passed_to_main(tmp_path):
    script = _script(tmp_path, 'def main(argv):\n    assert "--debug" not in argv, argv\n    raise UserError("bad")\n')
    result = _call(script, "--debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "UserError: bad" in result.stderr


def test_an_internal_error_is_one_line_that_says_so(tmp_path):
    script = _script(tmp_path, "def main(argv):\n    {}['missing']\n")
    result = _call(script)
    assert result.returncode == 1
    assert "internal error (KeyError" in result.stderr and "--debug" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_closed_stdout_ends_quietly(tmp_path):
    script = _script(tmp_path, "def main(argv):\n    for i in range(200000):\n        print('line', i)\n")
    result = subprocess.run(
        f"set -o pipefail; {sys.executable} {script} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
        timeout=60,
    )
    assert result.stdout == "line 0\n"
    assert result.stderr == ""
    assert result.returncode == 141


def test_usage_errors_keep_argparse_exit_2(tmp_path):
    script = _script(
        tmp_path,
        "import argparse\ndef main(argv):\n    p = argparse.ArgumentParser()\n    p.add_argument('--n', type=int)\n"
        "    p.parse_args(argv)\n",
    )
    result = _call(script, "--n", "x")
    assert result.returncode == 2 and "invalid int value" in result.stderr


def test_output_checks(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        check_output_dir(regular)
    with pytest.raises(UserError, match="is not a directory"):
        check_output_dir(regular / "sub" / "dir")
    with pytest.raises(UserError, match="is a directory"):
        check_output_file(tmp_path)
    with pytest.raises(UserError, match="is not a directory"):
        check_output_file(regular / "out.txt")
    check_output_dir(tmp_path / "new" / "deeper")  # creatable: no error
    check_output_file(tmp_path / "new" / "out.txt")
    assert not (tmp_path / "new").exists()  # checking creates nothing
