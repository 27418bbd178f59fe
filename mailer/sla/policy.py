"""SLA policies set by ops: targets per clock, a calendar, reminders, escalation.

Config::

    [sla]
    default_policy = "standard"
    reminders = [75, 90]                     # percent of a target at which agents are reminded
    by_urgency = { critical = "critical", high = "urgent" }
    by_category = { promotion = "office-hours" }

    [sla.calendars.weekdays]
    timezone = "Europe/Berlin"
    hours = { mon = "09:00-18:00", tue = "09:00-18:00", ... }
    holidays = ["2026-12-25"]

    [sla.policies.standard]
    calendar = "24x7"
    first_response_hours = 24
    next_update_hours = 24
    resolution_hours = 120
    escalation_address = "escalations@exchange.example"
    notify_customer_on_breach = false

A ticket's policy is, in order: the rules' ``sla`` field, ``by_category``, ``by_urgency``,
``default_policy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailer.errors import ConfigError
from mailer.sla.calendar import DEFAULT_CALENDAR, Calendar, parse_calendar

CLOCKS = ("first_response", "next_update", "resolution")
DEFAULT_BY_URGENCY = (("critical", "critical"), ("high", "urgent"))
URGENCIES = ("critical", "high", "normal", "low")


@dataclass(frozen=True, slots=True)
class Policy:
    """Targets (hours) per clock and what happens at a breach."""

    name: str
    calendar: str = "24x7"
    first_response_hours: float = 24.0
    next_update_hours: float = 24.0
    resolution_hours: float = 120.0
    escalation_address: str | None = None
    notify_customer_on_breach: bool = False

    def target_seconds(self, clock: str) -> float:
        """The target of one clock in business seconds."""
        return float(getattr(self, f"{clock}_hours")) * 3600.0


DEFAULT_POLICIES = (
    Policy("standard"),
    Policy("urgent", first_response_hours=4, next_update_hours=8, resolution_hours=48),
    Policy("critical", first_response_hours=1, next_update_hours=2, resolution_hours=24),
)


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """All SLA settings."""

    policies: tuple[Policy, ...] = DEFAULT_POLICIES
    calendars: tuple[Calendar, ...] = (DEFAULT_CALENDAR,)
    default_policy: str = "standard"
    reminders: tuple[int, ...] = (75, 90)
    by_urgency: tuple[tuple[str, str], ...] = (("critical", "critical"), ("high", "urgent"))
    by_category: tuple[tuple[str, str], ...] = ()

    def policy(self, name: str | None) -> Policy:
        """The policy called ``name`` (the default one if unknown)."""
        wanted = name or self.default_policy
        found = next((p for p in self.policies if p.name == wanted), None)
        return found or next(p for p in self.policies if p.name == self.default_policy)

    def calendar(self, name: str) -> Calendar:
        """The calendar called ``name`` (24/7 if unknown)."""
        return next((c for c in self.calendars if c.name == name), DEFAULT_CALENDAR)

    def choose(self, rule_sla: str | None, category: str | None, urgency: str | None) -> str:
        """The policy name for a ticket."""
        if rule_sla and any(p.name == rule_sla for p in self.policies):
            return rule_sla
        by_cat, by_urg = dict(self.by_category), dict(self.by_urgency)
        return by_cat.get(category or "") or by_urg.get(urgency or "") or self.default_policy


POLICY_KEYS = {"calendar": str, "first_response_hours": (int, float),
               "next_update_hours": (int, float), "resolution_hours": (int, float),
               "escalation_address": str, "notify_customer_on_breach": bool}


def parse_sla(raw: Any) -> SlaConfig:
    """Validate the ``[sla]`` table."""
    if raw is None:
        return SlaConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("sla", "must be a table")
    known = {"default_policy", "reminders", "by_urgency", "by_category", "calendars", "policies"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"sla.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    calendars = _calendars(raw.get("calendars", {}))
    policies = _policies(raw.get("policies", {}), {c.name for c in calendars})
    names = {p.name for p in policies}
    default = raw.get("default_policy", "standard")
    if default not in names:
        raise ConfigError("sla.default_policy", f"no policy named {default!r}")
    return SlaConfig(policies, calendars, default, _reminders(raw.get("reminders", [75, 90])),
                     _mapping(raw.get("by_urgency"), "sla.by_urgency", names, URGENCIES,
                              DEFAULT_BY_URGENCY),
                     _mapping(raw.get("by_category"), "sla.by_category", names, None, ()))


def _calendars(raw: Any) -> tuple[Calendar, ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError("sla.calendars", "must be a table of calendars")
    parsed = [parse_calendar(name, spec, f"sla.calendars.{name}") for name, spec in raw.items()]
    return (DEFAULT_CALENDAR, *(c for c in parsed if c.name != DEFAULT_CALENDAR.name))


def _policies(raw: Any, calendars: set[str]) -> tuple[Policy, ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError("sla.policies", "must be a table of policies")
    merged = {p.name: p for p in DEFAULT_POLICIES}
    for name, spec in raw.items():
        merged[name] = _policy(name, spec, calendars)
    return tuple(merged.values())


def _policy(name: str, spec: Any, calendars: set[str]) -> Policy:
    where = f"sla.policies.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(where, "must be a table")
    for key, value in spec.items():
        want = POLICY_KEYS.get(key)
        if want is None:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(POLICY_KEYS)})")
        bad_number = want == (int, float) and (isinstance(value, bool) or not (
            isinstance(value, int | float) and value > 0))
        if bad_number or not isinstance(value, want):  # type: ignore[arg-type]
            raise ConfigError(f"{where}.{key}", f"invalid value {value!r}")
    if spec.get("calendar", "24x7") not in calendars:
        raise ConfigError(f"{where}.calendar", f"no calendar named {spec.get('calendar')!r}")
    return Policy(name, **spec)


def _reminders(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 100 for p in raw):
        raise ConfigError("sla.reminders", "expected a list of percentages between 1 and 99")
    return tuple(sorted(set(raw)))


def _mapping(raw: Any, key: str, policies: set[str], allowed: tuple[str, ...] | None,
             default: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a table")
    for name, policy in raw.items():
        if allowed is not None and name not in allowed:
            raise ConfigError(f"{key}.{name}", f"unknown value (known: {', '.join(allowed)})")
        if policy not in policies:
            raise ConfigError(f"{key}.{name}", f"no policy named {policy!r}")
    return tuple(raw.items())
