"""SLA clocks: pure functions over a ticket's clock state (no database here).

A clock has a start instant, a target in business seconds and the business time it was
paused. Its due time is ``calendar.add(start, target + paused)``; reminders fire at a
percentage of the target, shifted by the same pauses. Each fired event is remembered by tag
(``"75"``, ``"90"``, ``"breach"``) so it is never fired twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailer.sla.calendar import Calendar


@dataclass(frozen=True, slots=True)
class Clock:
    """One running (or stopped) SLA clock."""

    name: str
    start: datetime
    target: float
    paused: float = 0.0
    done: bool = False
    fired: tuple[str, ...] = ()

    def due(self, calendar: Calendar) -> datetime:
        """When the target is breached."""
        return calendar.add(self.start, self.target + self.paused)

    def events(self, calendar: Calendar, reminders: tuple[int, ...]) -> list[tuple[str, datetime]]:
        """(tag, instant) of every reminder and the breach, in order."""
        out = [(str(p), calendar.add(self.start, self.target * p / 100 + self.paused))
               for p in reminders]
        return [*out, ("breach", self.due(calendar))]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"start": self.start.isoformat(), "target": self.target, "paused": self.paused,
                "done": self.done, "fired": list(self.fired)}

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Clock:
        """Inverse of :meth:`to_json`."""
        return cls(name, datetime.fromisoformat(data["start"]), float(data["target"]),
                   float(data.get("paused", 0.0)), bool(data.get("done", False)),
                   tuple(data.get("fired", ())))


def load(state: dict[str, Any] | None) -> dict[str, Clock]:
    """Clocks from the ticket's JSON state."""
    return {name: Clock.from_json(name, data) for name, data in (state or {}).items()}


def dump(clocks: dict[str, Clock]) -> dict[str, Any]:
    """The ticket's JSON state."""
    return {name: clock.to_json() for name, clock in clocks.items()}


def mark_fired(clock: Clock, tags: list[str]) -> Clock:
    """The clock with ``tags`` remembered as fired."""
    return dataclasses.replace(clock, fired=tuple(dict.fromkeys([*clock.fired, *tags])))


def add_pause(clocks: dict[str, Clock], seconds: float) -> dict[str, Clock]:
    """Every running clock shifted by a pause of ``seconds`` business seconds."""
    return {n: c if c.done else dataclasses.replace(c, paused=c.paused + seconds)
            for n, c in clocks.items()}


def stop(clocks: dict[str, Clock], *names: str) -> dict[str, Clock]:
    """The named clocks stopped."""
    return {n: dataclasses.replace(c, done=True) if n in names else c for n, c in clocks.items()}
