import pytest

from espnet_distill.utils.fileio import atomic_write


def test_atomic_write_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target) as f:
        f.write("hello\n")
        assert not target.exists()  # nothing visible until the write completes
    assert target.read_text() == "hello\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    """Not mkstemp's 0600: what open() would give under the process's umask."""
    from espnet_distill.utils import fileio

    with fileio.atomic_write(tmp_path / "a.txt") as f:
        f.write("x")
    with open(tmp_path / "b.txt", "w") as f:
        f.write("x")
    assert (
        (tmp_path / "a.txt").stat().st_mode & 0o777
        == (tmp_path / "b.txt").stat().st_mode & 0o777
        == 0o666 & ~fileio._UMASK
    )


def test_remove_stale_tmp_files_takes_what_killed_writers_left_and_nothing_else(tmp_path, repo_root):
    """A writer killed inside atomic_write (os._exit: no cleanup runs) leaves its temporary file; it is found."""
    import subprocess
    import sys

    from espnet_distill.utils.fileio import remove_stale_tmp_files, stale_tmp_paths, tmp_path_for

    target = tmp_path / "feats.scp"
    code = (
        "import os, sys\n"
        "from espnet_distill.utils.fileio import atomic_write\n"
        "with atomic_write(sys.argv[1]) as f:\n"
        "    f.write('half')\n"
        "    f.flush()\n"
        "    os._exit(9)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(target)], cwd=repo_root)
    assert killed.returncode == 9
    (left,) = list(tmp_path.iterdir())
    assert left.name.startswith(".feats.scp.") and left.name.endswith(".tmp") and left.read_text() == "half"
    dead_pid = tmp_path / ".feats.scp.tmp4194301"  # tmp_path_for's name in a process that is gone
    own = tmp_path_for(target)  # this process's: not stale
    keep = [
        tmp_path / ".feats.scp.tmpx",
        tmp_path / ".feats.scp.bak",
        tmp_path / ".xfeats.scp.tmp1",
        tmp_path / "notes",
    ]
    for path in [dead_pid, own, *keep]:
        path.write_text("x")
    assert stale_tmp_paths(target) == sorted([left, dead_pid])
    assert remove_stale_tmp_files(target) == sorted([left, dead_pid])
    assert sorted(tmp_path.iterdir()) == sorted([own, *keep])
