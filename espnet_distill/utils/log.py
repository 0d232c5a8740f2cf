"""One logging format for every entry point."""

import logging
import os
import sys
from pathlib import Path
from typing import Optional, Union

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) [%(rank)s] %(levelname)s: %(message)s"


class _RankFilter(logging.Filter):
    """Tag every record with the process rank (``RANK`` under DDP, else 0)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = os.environ.get("RANK", "0")
        return True


def setup_logging(log_file: Optional[Union[str, Path]] = None, level: Union[int, str] = "INFO") -> None:
    """Log to stderr and, when given, to ``log_file`` with the project format."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(_RankFilter())
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
