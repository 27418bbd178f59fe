"""SLA bookkeeping on tickets: start, stop, pause and re-target clocks; keep due columns.

Every change ends in :func:`refresh`, which writes the three due columns and ``sla_next_at``
(the earliest unfired reminder or breach), the one indexed column the SLA job queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailer.models import Ticket
from mailer.sla import clocks
from mailer.sla.clocks import Clock
from mailer.sla.policy import SlaConfig

ACTIVE = ("new", "open")


def initial(sla: SlaConfig, policy_name: str, created: datetime) -> dict[str, Any]:
    """Column values for a new ticket: first-response and resolution clocks running."""
    policy = sla.policy(policy_name)
    state = {name: Clock(name, created, policy.target_seconds(name))
             for name in ("first_response", "resolution")}
    return {"sla_policy": policy.name, **columns(sla, policy.name, state, "new")}


def columns(sla: SlaConfig, policy_name: str, state: dict[str, Clock], status: str,
            schedule: dict[str, list[tuple[str, datetime]]] | None = None) -> dict[str, Any]:
    """The due columns and ``sla_next_at`` for ``state`` (``schedule``: its events, if known)."""
    calendar = sla.calendar(sla.policy(policy_name).calendar)
    schedule = schedule or {n: c.events(calendar, sla.reminders) for n, c in state.items()}
    due = {f"{name}_due_at": schedule[name][-1][1] if not c.done else None
           for name, c in state.items()}
    upcoming = [at for name, c in state.items() if not c.done
                for tag, at in schedule[name] if tag not in c.fired]
    return {"sla_state": clocks.dump(state),
            "first_response_due_at": due.get("first_response_due_at"),
            "next_update_due_at": due.get("next_update_due_at"),
            "resolution_due_at": due.get("resolution_due_at"),
            "sla_next_at": min(upcoming, default=None) if status in ACTIVE else None}


def refresh(sla: SlaConfig, ticket: Ticket, state: dict[str, Clock]) -> None:
    """Store ``state`` and the derived columns on ``ticket``."""
    for key, value in columns(sla, ticket.sla_policy or sla.default_policy, state,
                               ticket.status).items():
        setattr(ticket, key, value)


def retarget(sla: SlaConfig, ticket: Ticket, policy_name: str) -> None:
    """Apply a (new) policy's targets to the running clocks, e.g. after urgency rose."""
    policy = sla.policy(policy_name)
    ticket.sla_policy = policy.name
    state = {n: Clock(n, c.start, policy.target_seconds(n), c.paused, c.done, c.fired)
             for n, c in clocks.load(ticket.sla_state).items()}
    refresh(sla, ticket, state)


def customer_replied(sla: SlaConfig, ticket: Ticket, now: datetime) -> None:
    """After the first response, each customer reply starts the next-update clock."""
    state = clocks.load(ticket.sla_state)
    if ticket.first_response_at is not None:
        policy = sla.policy(ticket.sla_policy)
        state["next_update"] = Clock("next_update", now, policy.target_seconds("next_update"))
    if ticket.status == "pending":
        _unpause(sla, ticket, state, now)
        ticket.status = "open"
    refresh(sla, ticket, state)


def agent_replied(sla: SlaConfig, ticket: Ticket, now: datetime) -> None:
    """An answer stops the first-response and next-update clocks."""
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    refresh(sla, ticket, clocks.stop(clocks.load(ticket.sla_state), "first_response",
                                     "next_update"))


def set_status(sla: SlaConfig, ticket: Ticket, status: str, now: datetime) -> None:
    """Change the status: pending pauses the clocks, resolved/closed stops them."""
    state = clocks.load(ticket.sla_state)
    if ticket.status == "pending" and status != "pending":
        state = _unpause(sla, ticket, state, now)
    if status == "pending" and ticket.status != "pending":
        ticket.paused_since = now
    if status in ("resolved", "closed"):
        state = clocks.stop(state, *state)
    ticket.status = status
    refresh(sla, ticket, state)


def _unpause(sla: SlaConfig, ticket: Ticket, state: dict[str, Clock],
             now: datetime) -> dict[str, Clock]:
    if ticket.paused_since is None:
        return state
    calendar = sla.calendar(sla.policy(ticket.sla_policy).calendar)
    since = ticket.paused_since
    since = since if since.tzinfo else since.replace(tzinfo=now.tzinfo)
    paused = calendar.elapsed(since, now)
    ticket.paused_seconds = (ticket.paused_seconds or 0.0) + paused
    ticket.paused_since = None
    shifted = clocks.add_pause(state, paused)
    state.clear()
    state.update(shifted)
    return state
