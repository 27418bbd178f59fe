"""Logging setup: one dictConfig, built from ``[logging]``. Messages never carry bodies."""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any, TextIO


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be replaced after setup)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current sys.stderr."""


def configure(level: str, quiet: bool = False) -> None:
    """Configure the root logger once, to stderr."""
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": "line"}},
        "root": {"level": "WARNING" if quiet else level, "handlers": ["stderr"]},
        "loggers": {"apscheduler": {"level": "WARNING"}, "alembic": {"level": "WARNING"}},
    })
