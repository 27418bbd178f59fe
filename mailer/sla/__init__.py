"""SLA: business-time calendars, per-ticket clocks, policies and the due-date bookkeeping."""

from __future__ import annotations
