"""Rules engine: ops-written TOML rules that set category, urgency, tags and SLA policy."""

from __future__ import annotations
