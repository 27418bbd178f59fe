"""CLI handlers for statuses and SLAs: ``tickets set-status``, ``sla report``, ``sla explain``."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from mailer.commands import _app
from mailer.models import Ticket
from mailer.sla import clocks
from mailer.sla.service import set_status as change_status
from mailer.tickets import parse_number


def _ticket(session: Session, number: str) -> Ticket | None:
    ticket_id = parse_number(number)
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def set_status(args: argparse.Namespace) -> int:
    """``mailer tickets set-status NUMBER STATUS``."""
    app = _app(args)
    with Session(app.engine) as session:
        ticket = _ticket(session, args.number)
        if ticket is None:
            print(f"mailer: no ticket {args.number}", file=sys.stderr)
            return 1
        before = ticket.status
        change_status(app.config.sla, ticket, args.status, datetime.now(UTC))
        session.add(ticket)
        session.commit()
    print(f"{args.number}: {before} -> {args.status}")
    return 0


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def report_rows(engine: Any, now: datetime) -> list[dict[str, Any]]:
    """Per policy and category: met, breached, at risk, median first response (hours)."""
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"met": 0, "breached": 0, "at_risk": 0, "open": 0, "first_response": []})
    with Session(engine) as session:
        for t in session.exec(select(Ticket).order_by(col(Ticket.id))):
            g = groups[(t.sla_policy or "-", t.category or "-")]
            g["breached" if t.breached_targets else "met"] += 1
            due = _aware(t.first_response_due_at) or _aware(t.next_update_due_at)
            if t.status in ("new", "open") and not t.breached_targets and due is not None \
                    and (due - now).total_seconds() < 3600:
                g["at_risk"] += 1
            g["open"] += t.status in ("new", "open", "pending")
            first, created = _aware(t.first_response_at), _aware(t.created_at)
            if first is not None and created is not None:
                g["first_response"].append((first - created).total_seconds() / 3600)
    return [{"policy": p, "category": c, "met": g["met"], "breached": g["breached"],
             "at_risk": g["at_risk"], "open": g["open"],
             "median_first_response_hours": round(statistics.median(g["first_response"]), 2)
             if g["first_response"] else None} for (p, c), g in sorted(groups.items())]


def report(args: argparse.Namespace) -> int:
    """``mailer sla report [--format json]``."""
    rows = report_rows(_app(args).engine, datetime.now(UTC))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'POLICY':<12} {'CATEGORY':<16} {'MET':>5} {'BREACHED':>8} {'AT RISK':>7} "
          f"{'OPEN':>5} {'MEDIAN 1ST RESPONSE (h)':>24}")
    for r in rows:
        median = "-" if r["median_first_response_hours"] is None else \
            r["median_first_response_hours"]
        print(f"{r['policy']:<12} {r['category']:<16} {r['met']:>5} {r['breached']:>8} "
              f"{r['at_risk']:>7} {r['open']:>5} {median:>24}")
    return 0


def explain(args: argparse.Namespace) -> int:
    """``mailer sla explain NUMBER``: each clock, pauses, due times, fired events."""
    app = _app(args)
    sla = app.config.sla
    with Session(app.engine) as session:
        ticket = _ticket(session, args.number)
        if ticket is None:
            print(f"mailer: no ticket {args.number}", file=sys.stderr)
            return 1
        policy = sla.policy(ticket.sla_policy)
        calendar = sla.calendar(policy.calendar)
        print(f"{ticket.number} [{ticket.status}] policy {policy.name}, calendar "
              f"{calendar.name}, urgency {ticket.urgency or '-'}")
        print(f"paused so far: {ticket.paused_seconds / 3600:.2f} business hours"
              + (f", pending since {ticket.paused_since}" if ticket.paused_since else ""))
        for name, clock in clocks.load(ticket.sla_state).items():
            state = "stopped" if clock.done else "running"
            print(f"  {name:<15} {state:<8} started {clock.start.isoformat(timespec='minutes')}"
                  f"  target {clock.target / 3600:g} h  due "
                  f"{clock.due(calendar).isoformat(timespec='minutes')}"
                  f"  fired: {', '.join(clock.fired) or '-'}")
        if ticket.breached_targets:
            print(f"breached: {', '.join(ticket.breached_targets)} at {ticket.breached_at}")
    return 0
