"""Test suite for the mailer package (``tests.servers`` holds the real-server helpers)."""

from __future__ import annotations
