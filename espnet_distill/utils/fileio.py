"""File helpers: atomic writes, so that a crash never leaves half-written output; content digests."""

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Iterator, List, Union

PathLike = Union[str, Path]


def tmp_path_for(path: PathLike) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def stale_tmp_paths(path: PathLike) -> List[Path]:
    """Temporary files of ``path`` that another process left behind (it was killed before its rename).

    Only the names this module gives, next to ``path``: :func:`tmp_path_for`'s
    ``.<name>.tmp<pid>`` (not this process's) and :func:`atomic_write`'s ``.<name>.<8 random>.tmp``.
    """
    path = Path(path)
    own = tmp_path_for(path).name
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp[0-9]+|[a-z0-9_]{{8}}\.tmp)")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.name != own and p.is_file())


def remove_stale_tmp_files(path: PathLike) -> List[Path]:
    """Remove :func:`stale_tmp_paths` of ``path``; return them.

    Call it only where no other process writes ``path`` at the same time (a
    rerun of the job that writes it), so that what is removed is a dead writer's.
    """
    removed = []
    for tmp in stale_tmp_paths(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
            logging.getLogger(__name__).info("removed %s, left by an earlier run that did not finish", tmp)
    return removed


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; the result gets the usual permissions
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: setting it is process-wide


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's content, as ``sha256sum`` prints it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
