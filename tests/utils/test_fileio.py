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
