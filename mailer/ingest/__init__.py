"""Inbound mail: IMAP source, parsing, threading."""

from __future__ import annotations
