"""One error path for every entry point.

Each ``espnet_distill.bin`` module ends with ``run(main)``.  It runs ``main``
and turns what went wrong into what a user of a command-line tool expects:

- a user error (any ``ValueError``, which every error class of this project
  derives from, or an ``OSError`` naming a file): one line on stderr,
  ``<prog>: error: <message>``, exit status 1;
- a usage error: argparse's own message, exit status 2;
- stdout closed by its reader (``| head -1``): quiet, exit status 141, as a
  shell reports a process ended by SIGPIPE;
- Ctrl-C: exit status 130;
- anything else: one line saying it is an internal error, exit status 1.

No traceback is printed unless ``--debug`` is on the command line (it is taken
out before ``main`` parses its arguments) or ``ESPNET_DISTILL_DEBUG=1`` is set.
"""

import logging
import os
import sys
from pathlib import Path
from typing import Callable, List, NoReturn, Optional

DEBUG_FLAGS = ("--debug", "--verbose_errors")
DEBUG_ENV = "ESPNET_DISTILL_DEBUG"


class UserError(ValueError):
    """A mistake the user can fix: bad input, a missing file, a wrong option.

    The message names the file, key or option.
    """


def _prog() -> str:
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "espnet_distill"
    if name == "__main__" and sys.argv:
        return "espnet_distill"
    return name


def _say(message: str) -> None:
    """One line on stderr, through logging when the program configured it."""
    if logging.getLogger().handlers:
        logging.getLogger(__name__).error("%s", message)
    else:
        print(f"{_prog()}: error: {message}", file=sys.stderr, flush=True)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(e):
        return f"{e.filename}: {e.strerror or e}"
    text = str(e).strip() or type(e).__name__
    return " ".join(text.splitlines()) if len(text.splitlines()) <= 3 else text.splitlines()[0]


def _quiet_broken_pipe() -> NoReturn:
    # Python flushes stdout again at exit and would report the same broken pipe: point it at /dev/null.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    os._exit(141)


def debug_requested(argv: List[str]) -> bool:
    """Whether tracebacks were asked for, on the command line or in the environment."""
    return any(flag in argv for flag in DEBUG_FLAGS) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run(main: Callable[[Optional[List[str]]], object], argv: Optional[List[str]] = None) -> NoReturn:
    """Run ``main(argv)`` with the project's error path, then exit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a not in DEBUG_FLAGS]
    try:
        main(argv)
        sys.stdout.flush()
    except SystemExit as e:
        if e.code not in (None, 0) and not isinstance(e.code, int):
            _say(str(e.code))  # SystemExit("message"): one line, exit 1
            sys.exit(1)
        raise
    except KeyboardInterrupt:
        print(f"{_prog()}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except (ValueError, OSError) as e:
        if debug:
            raise
        _say(_describe(e))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001  (the last line of defence: one line, not a traceback)
        if debug:
            raise
        _say(f"internal error ({type(e).__name__}: {_describe(e)}); rerun with --debug for the traceback")
        sys.exit(1)
    sys.exit(0)


def check_output_dir(path: Path, what: str = "output directory") -> None:
    """Refuse an output directory that cannot be created or written, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: the {what} exists and is not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: cannot create the {what}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot create the {what}: {parent} is not writable")


def check_output_file(path: Path, what: str = "output file") -> None:
    """Refuse an output file whose place cannot be written, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: the {what} is a directory")
    check_output_dir(path.parent if str(path.parent) else Path("."), f"directory of the {what}")
