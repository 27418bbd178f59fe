"""Ticket storage: the only module of the ingest side that touches ticket ORM rows.

Callers get :class:`TicketRef` records back, never the rows themselves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, insert
from sqlmodel import Session, SQLModel, col, func, select

from mailer.ingest.mail import Address, ParsedMail
from mailer.models import Message, Ticket, TicketEvent, utcnow
from mailer.rules.classify import Classification
from mailer.rules.engine import raise_urgency
from mailer.sla import service as sla_service
from mailer.sla.policy import SlaConfig

OPEN_STATES = ("new", "open", "pending")
_INSERT_EVENT = insert(TicketEvent.__table__)  # type: ignore[attr-defined]
NUMBER = re.compile(r"[Tt]-(\d{1,12})")


@dataclass(frozen=True, slots=True)
class TicketRef:
    """What threading needs to know about a ticket."""

    id: int
    number: str
    status: str
    requester: str
    participants: tuple[str, ...]


def parse_number(number: str) -> int | None:
    """The database id of ticket ``T-000123`` (None if it is not a ticket number)."""
    match = NUMBER.fullmatch(number.strip())
    return int(match.group(1)) if match else None


def _ref(row: Ticket) -> TicketRef:
    assert row.id is not None
    return TicketRef(row.id, row.number, row.status, row.requester, tuple(row.participants))


def by_number(session: Session, number: str) -> TicketRef | None:
    """The ticket with this number, or None."""
    ticket_id = parse_number(number)
    row = session.get(Ticket, ticket_id) if ticket_id is not None else None
    return _ref(row) if row else None


def by_message_id(session: Session, message_id: str) -> TicketRef | None:
    """The ticket holding a message with this Message-ID (inbound or ours), or None."""
    stmt = (select(Ticket).join(Message, col(Message.ticket_id) == col(Ticket.id))
            .where(Message.message_id == message_id).order_by(col(Message.id)).limit(1))
    row = session.exec(stmt).first()
    return _ref(row) if row else None


def open_ticket(session: Session, mail: ParsedMail, support: tuple[str, ...],
                found: Classification | None = None,
                sla: SlaConfig | None = None) -> TicketRef:
    """Open a ticket for ``mail`` (whose sender is the requester), classified as ``found``."""
    sender = mail.from_ or Address("", "")
    now = utcnow()
    people = _participants(mail, support)
    values: dict[str, Any] = {
        "status": "new", "requester": sender.address, "requester_name": sender.name[:500],
        "subject": mail.subject, "participants": people, "created_at": now,
        "updated_at": now, "last_customer_at": now, "tags": [], "entities": {},
        "language": None, "category": None, "urgency": None, "queue": None,
        "sla_policy": None}
    if found is not None:
        values.update(language=found.language, category=found.decision.category,
                      urgency=found.urgency, tags=list(found.tags), entities=found.entities,
                      queue=found.decision.queue, sla_policy=found.decision.sla)
    sla = sla or SlaConfig()
    policy = sla.choose(values["sla_policy"], values["category"], values["urgency"])
    values.update({"breached_targets": [], "paused_seconds": 0.0,
                   **sla_service.initial(sla, policy, now)})
    ticket_id = _insert(session, Ticket, values)
    return TicketRef(ticket_id, f"T-{ticket_id:06d}", "new", sender.address, tuple(people))


def _insert(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    """INSERT one row with SQLAlchemy Core and return its id.

    The hot path of ingest writes with Core rather than ORM objects: building and flushing
    SQLModel instances cost more than parsing the mail did.
    """
    result = session.execute(_insert_returning_id(model), values)
    return int(result.scalar_one())


@functools.cache
def _insert_returning_id(model: type[SQLModel]) -> Insert:
    """One constant statement per table, so SQLAlchemy compiles it once and caches it."""
    table = model.__table__  # type: ignore[attr-defined]
    return insert(table).returning(table.c.id)


def _participants(mail: ParsedMail, support: tuple[str, ...]) -> list[str]:
    people = [a.address for a in (mail.from_, *mail.cc, *mail.to) if a is not None]
    return list(dict.fromkeys(p for p in people if p and p not in support))


def note_customer_mail(session: Session, ticket_id: int, mail: ParsedMail,
                       support: tuple[str, ...], reopen: bool,
                       found: Classification | None = None,
                       sla: SlaConfig | None = None) -> bool:
    """Record a customer's mail on the ticket; reopen it if resolved. True if reopened.

    A reply's classification only adds: urgency rises, tags and entities accumulate, and
    the category is set only if the ticket had none (or ``general``).
    """
    row = session.get(Ticket, ticket_id)
    assert row is not None
    row.participants = list(dict.fromkeys([*row.participants, *_participants(mail, support)]))
    row.updated_at = row.last_customer_at = utcnow()
    sla = sla or SlaConfig()
    if found is not None:
        before = row.urgency
        _merge(row, found)
        if row.urgency != before:  # tighter targets for a more urgent ticket
            sla_service.retarget(sla, row, sla.choose(found.decision.sla, row.category,
                                                      row.urgency))
    reopened = reopen and row.status == "resolved"
    if reopened:
        sla_service.set_status(sla, row, "open", utcnow())
    if reopen:  # a person wrote (not an auto-reply): the next-update clock starts
        sla_service.customer_replied(sla, row, utcnow())
    session.add(row)
    return reopened


def _merge(row: Ticket, found: Classification) -> None:
    row.urgency = raise_urgency(row.urgency, found.urgency)
    if row.category in (None, "general"):
        row.category = found.decision.category
    row.language = row.language or found.language
    row.tags = list(dict.fromkeys([*row.tags, *found.tags]))
    row.entities = {k: list(dict.fromkeys([*row.entities.get(k, []), *v]))
                    for k, v in {**row.entities, **found.entities}.items()}


def add_message(session: Session, ticket_id: int, mail: ParsedMail, *, kind: str,
                direction: str = "in", inbound_id: int | None = None) -> int:
    """Store one message on a ticket; returns its row id."""
    return _insert(session, Message, {
        "ticket_id": ticket_id, "inbound_id": inbound_id, "message_id": mail.message_id,
        "direction": direction, "kind": kind,
        "from_addr": mail.from_.address if mail.from_ else "",
        "from_name": mail.from_.name[:500] if mail.from_ else "",
        "to_addrs": [a.address for a in mail.to], "cc_addrs": [a.address for a in mail.cc],
        "reply_to": [a.address for a in mail.reply_to], "subject": mail.subject,
        "date": mail.date, "text": mail.text, "new_text": mail.new_text, "html": mail.html,
        "in_reply_to": mail.in_reply_to[0][:1000] if mail.in_reply_to else None,
        "references": list(mail.references[-50:]), "defects": list(mail.defects),
        "created_at": utcnow(),
    })


def record_event(session: Session, ticket_id: int, kind: str, at: datetime | None = None,
                 **detail: Any) -> None:
    """Append an entry to the ticket's history."""
    session.execute(_INSERT_EVENT, {"ticket_id": ticket_id, "kind": kind,
                                    "at": at or utcnow(), "detail": detail})


def flood_target(session: Session, sender: str, per_sender: int, per_domain: int,
                 now: datetime) -> TicketRef | None:
    """The ticket to group a flooding sender's new mail onto, or None if not flooding.

    ``per_domain`` 0 turns the domain limit off (consumer mail domains carry thousands of
    legitimate customers; set it where a domain flood is a real threat).
    """
    since = now - timedelta(hours=1)
    recent = select(func.count()).select_from(Message).where(
        Message.direction == "in", col(Message.created_at) >= since)
    domain = sender.rpartition("@")[2]
    if session.exec(recent.where(Message.from_addr == sender)).one() >= per_sender:
        match = col(Ticket.requester) == sender
    elif per_domain and session.exec(
            recent.where(col(Message.from_addr).like(f"%@{domain}"))).one() >= per_domain:
        match = col(Ticket.requester).like(f"%@{domain}")
    else:
        return None
    row = session.exec(select(Ticket).where(match, col(Ticket.status) != "closed")
                       .order_by(col(Ticket.id).desc()).limit(1)).first()
    return _ref(row) if row else None
