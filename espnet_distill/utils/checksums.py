"""``SHA256SUMS`` files: the checksums of a directory's files, in ``sha256sum``'s format.

One line per file, ``<64 hex digits>  <name>``, the name relative to the
directory (``sha256sum model.onnx tokens.txt > SHA256SUMS`` run inside it
writes the same file, and ``sha256sum -c SHA256SUMS`` checks it).
"""

import re
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable

from espnet_distill.utils.fileio import PathLike, atomic_write, sha256_file

SUMS_NAME = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")  # "<hex>  <name>" (text) or "<hex> *<name>" (binary mode)


class ChecksumError(ValueError):
    """A file whose content is not the one its directory's ``SHA256SUMS`` lists, or a malformed ``SHA256SUMS``."""


def read_sums(path: PathLike) -> Dict[str, str]:
    """``{name: hex digest}`` of a ``SHA256SUMS`` file; a line that is not ``<hex>  <name>`` is an error naming it."""
    path = Path(path)
    sums: Dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ChecksumError(f"{path}: line {number} is not '<sha256>  <file name>': {line[:80]!r}")
        sums[PurePosixPath(match.group(2)).as_posix()] = match.group(1).lower()
    return sums


def write_sums(directory: PathLike, names: Iterable[str]) -> Path:
    """Write ``directory/SHA256SUMS`` for ``names`` (files in ``directory``), in that order; returns its path."""
    directory = Path(directory)
    lines = [f"{sha256_file(directory / name)}  {name}\n" for name in names]
    with atomic_write(directory / SUMS_NAME) as f:
        f.write("".join(lines))
    return directory / SUMS_NAME


def verify_sums(directory: PathLike, names: Iterable[str]) -> bool:
    """Check ``names`` (files in ``directory``) against ``directory/SHA256SUMS`` when there is one.

    Returns whether there was one.  A file it does not list, or whose content has
    another digest, is a :class:`ChecksumError` naming the file.
    """
    directory = Path(directory)
    sums_file = directory / SUMS_NAME
    if not sums_file.is_file():
        return False
    sums = read_sums(sums_file)
    for name in names:
        expected = sums.get(PurePosixPath(name).as_posix())
        if expected is None:
            raise ChecksumError(f"{directory / name}: not listed in {sums_file}, so it cannot be verified")
        actual = sha256_file(directory / name)
        if actual != expected:
            raise ChecksumError(
                f"{directory / name}: its SHA-256 {actual} is not the {expected} that {sums_file} lists: "
                "the file is damaged or was changed"
            )
    return True
