"""The check-sla job: one indexed query for tickets with an SLA event due, then act.

For each due event: a reminder goes to the agents' queue address, a breach marks the ticket
breached, sends an escalation to the policy's escalation address and, if the policy says
so, a "still working on it" update to the customer in their language. All of it goes
through the outbox with keys like ``sla:T-000123:first_response:75``, so a restart or a
second daemon never sends one twice; fired events are remembered on the ticket too.

The sweep reads only the columns it needs and writes with executemany (one INSERT for the
batch's outbox rows, one UPDATE for its tickets): 10,000 due tickets in one sweep.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session

from mailer import tickets
from mailer.config import Config
from mailer.ids import IdSigner
from mailer.models import Ticket
from mailer.outbound.outbox import OutboundMail, insert_many
from mailer.sla import clocks
from mailer.sla.policy import Policy
from mailer.sla.service import columns

log = logging.getLogger(__name__)
BATCH = 2000
_T = Ticket.__table__  # type: ignore[attr-defined]
_COLUMNS = (_T.c.id, _T.c.status, _T.c.sla_policy, _T.c.sla_state, _T.c.subject,
            _T.c.requester, _T.c.requester_name, _T.c.category, _T.c.urgency, _T.c.language,
            _T.c.breached_targets, _T.c.breached_at)
_UPDATE = update(_T).where(_T.c.id == bindparam("ticket_id"))


@dataclass(slots=True)
class _Batch:
    mails: list[OutboundMail] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def check_sla(engine: Engine, config: Config, signer: IdSigner, now: datetime) -> Counter[str]:
    """Handle every due SLA event; returns counts per event kind."""
    counts: Counter[str] = Counter()
    while True:
        with Session(engine) as session:
            due = session.execute(select(*_COLUMNS).where(_T.c.sla_next_at <= now)
                                  .order_by(_T.c.sla_next_at).limit(BATCH)
                                  .with_for_update(skip_locked=True)).all()
            batch = _Batch()
            for row in due:
                _handle(session, config, signer, row, now, batch)
            insert_many(session, batch.mails, now)
            if batch.updates:
                session.execute(_UPDATE, batch.updates)
            session.commit()
        counts.update(batch.counts)
        if len(due) < BATCH:
            return counts


def _handle(session: Session, config: Config, signer: IdSigner, row: Any, now: datetime,
            batch: _Batch) -> None:
    sla = config.sla
    policy = sla.policy(row.sla_policy)
    state = clocks.load(row.sla_state)
    calendar = sla.calendar(policy.calendar)
    breached = list(row.breached_targets or [])
    schedule = {n: c.events(calendar, sla.reminders) for n, c in state.items()}
    due_now = [(n, tag, at) for n, c in state.items() if not c.done
               for tag, at in schedule[n] if tag not in c.fired and at <= now]
    for clock_name, tag, at in due_now:
        if tag == "breach":
            batch.mails.extend(_breach(session, config, signer, row, policy, clock_name, at))
            breached = list(dict.fromkeys([*breached, clock_name]))
        else:
            batch.mails.extend(_remind(config, signer, row, clock_name, tag, at))
        state[clock_name] = clocks.mark_fired(state[clock_name], [tag])
        batch.counts["breach" if tag == "breach" else "reminder"] += 1
    values = columns(sla, policy.name, state, row.status, schedule)
    breached_at = row.breached_at or (now if breached else None)
    batch.updates.append({"ticket_id": row.id, **values, "breached_targets": breached,
                          "breached_at": breached_at})


def _number(row: Any) -> str:
    return f"T-{row.id:06d}"


def _context(row: Any, clock: str, at: datetime) -> dict[str, object]:
    return {"number": _number(row), "subject": row.subject, "requester": row.requester,
            "category": row.category or "general", "urgency": row.urgency or "normal",
            "clock": clock, "due_at": at.isoformat(timespec="minutes"),
            "policy": row.sla_policy or "", "customer_name": row.requester_name}


def _remind(config: Config, signer: IdSigner, row: Any, clock: str, tag: str,
            at: datetime) -> list[OutboundMail]:
    queue = config.agents.queue_address
    if not queue:
        return []
    number = _number(row)
    return [OutboundMail(
        key=f"sla:{number}:{clock}:{tag}", kind="sla_reminder", to=queue,
        template="sla_reminder", message_id=signer.make("remind", number), ticket_id=row.id,
        language="en", context={**_context(row, clock, at), "percent": int(tag)})]


def _breach(session: Session, config: Config, signer: IdSigner, row: Any, policy: Policy,
            clock: str, at: datetime) -> list[OutboundMail]:
    number = _number(row)
    tickets.record_event(session, row.id, "sla_breached", clock=clock, due_at=at.isoformat(),
                         policy=policy.name)
    log.info("ticket=%s SLA %s breached (due %s)", number, clock, at.isoformat())
    mails = []
    to = policy.escalation_address or config.agents.queue_address
    if to:
        mails.append(OutboundMail(
            key=f"sla:{number}:{clock}:breach", kind="sla_escalation", to=to,
            template="sla_escalation", message_id=signer.make("escalate", number),
            ticket_id=row.id, language="en", context=_context(row, clock, at)))
    if policy.notify_customer_on_breach and clock != "resolution":
        mails.append(OutboundMail(
            key=f"sla:{number}:{clock}:update", kind="sla_update", to=row.requester,
            template="sla_update", message_id=signer.make("update", number),
            ticket_id=row.id, language=row.language, context=_context(row, clock, at)))
    return mails
