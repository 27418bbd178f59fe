"""Logging setup: one dictConfig, built from ``[logging]``. Messages never carry bodies."""

from __future__ import annotations

import logging.config

from mailer.config import LoggingConfig


def configure(cfg: LoggingConfig, quiet: bool = False) -> None:
    """Configure the root logger once, to stderr."""
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": "WARNING" if quiet else cfg.level, "handlers": ["stderr"]},
        "loggers": {"apscheduler": {"level": "WARNING"}, "alembic": {"level": "WARNING"}},
    })
