"""The check-sla job: one indexed query for tickets with an SLA event due, then act.

For each due event: a reminder goes to the agents' queue address, a breach marks the ticket
breached, sends an escalation to the policy's escalation address and, if the policy says
so, a "still working on it" update to the customer in their language. All of it goes
through the outbox with keys like ``sla:T-000123:first_response:75``, so a restart or a
second daemon never sends one twice; fired events are remembered on the ticket too.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailer import tickets
from mailer.config import Config
from mailer.ids import IdSigner
from mailer.models import Ticket
from mailer.outbound.outbox import OutboundMail, enqueue
from mailer.sla import clocks
from mailer.sla.policy import Policy
from mailer.sla.service import refresh

log = logging.getLogger(__name__)
BATCH = 500


def check_sla(engine: Engine, config: Config, signer: IdSigner, now: datetime) -> Counter[str]:
    """Handle every due SLA event; returns counts per event kind."""
    counts: Counter[str] = Counter()
    while True:
        with Session(engine, expire_on_commit=False) as session:
            due = list(session.exec(select(Ticket).where(col(Ticket.sla_next_at) <= now)
                                    .order_by(col(Ticket.sla_next_at)).limit(BATCH)))
            for ticket in due:
                counts.update(_handle(session, config, signer, ticket, now))
            session.commit()
        if len(due) < BATCH:
            return counts


def _handle(session: Session, config: Config, signer: IdSigner, ticket: Ticket,
            now: datetime) -> Counter[str]:
    sla = config.sla
    policy = sla.policy(ticket.sla_policy)
    calendar = sla.calendar(policy.calendar)
    state = clocks.load(ticket.sla_state)
    done: Counter[str] = Counter()
    for clock_name, tag, at in clocks.pending_events(state, calendar, sla.reminders, now):
        if tag == "breach":
            _breach(session, config, signer, ticket, policy, clock_name, at)
        else:
            _remind(session, config, signer, ticket, clock_name, tag, at)
        state[clock_name] = clocks.mark_fired(state[clock_name], [tag])
        done["breach" if tag == "breach" else "reminder"] += 1
    refresh(sla, ticket, state)
    session.add(ticket)
    return done


def _context(ticket: Ticket, clock: str, at: datetime) -> dict[str, object]:
    return {"number": ticket.number, "subject": ticket.subject, "requester": ticket.requester,
            "category": ticket.category or "general", "urgency": ticket.urgency or "normal",
            "clock": clock, "due_at": at.isoformat(timespec="minutes"),
            "policy": ticket.sla_policy or "", "customer_name": ticket.requester_name}


def _remind(session: Session, config: Config, signer: IdSigner, ticket: Ticket, clock: str,
            tag: str, at: datetime) -> None:
    queue = config.agents.queue_address
    if not queue:
        return
    assert ticket.id is not None
    enqueue(session, OutboundMail(
        key=f"sla:{ticket.number}:{clock}:{tag}", kind="sla_reminder", to=queue,
        template="sla_reminder", message_id=signer.make("remind", ticket.number),
        ticket_id=ticket.id, language="en",
        context={**_context(ticket, clock, at), "percent": int(tag)}))


def _breach(session: Session, config: Config, signer: IdSigner, ticket: Ticket,
            policy: Policy, clock: str, at: datetime) -> None:
    assert ticket.id is not None
    ticket.breached_at = ticket.breached_at or at
    ticket.breached_targets = list(dict.fromkeys([*ticket.breached_targets, clock]))
    tickets.record_event(session, ticket.id, "sla_breached", clock=clock,
                         due_at=at.isoformat(), policy=policy.name)
    to = policy.escalation_address or config.agents.queue_address
    if to:
        enqueue(session, OutboundMail(
            key=f"sla:{ticket.number}:{clock}:breach", kind="sla_escalation", to=to,
            template="sla_escalation", message_id=signer.make("escalate", ticket.number),
            ticket_id=ticket.id, language="en", context=_context(ticket, clock, at)))
    if policy.notify_customer_on_breach and clock != "resolution":
        enqueue(session, OutboundMail(
            key=f"sla:{ticket.number}:{clock}:update", kind="sla_update",
            to=ticket.requester, template="sla_update",
            message_id=signer.make("update", ticket.number), ticket_id=ticket.id,
            language=ticket.language, context=_context(ticket, clock, at)))
    log.info("ticket=%s SLA %s breached (due %s)", ticket.number, clock, at.isoformat())
