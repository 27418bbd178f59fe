"""Benchmarks for the mailer daemon (run with ``python -m bench.<name>``)."""

from __future__ import annotations
