"""Outbound mail: acknowledgements, notifications and agent replies, through the outbox."""

from __future__ import annotations
