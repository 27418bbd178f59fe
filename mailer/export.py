"""Ticket views for people and tools: the JSON export and the quarantine listing.

The export's field names are a contract with outside tools: keep them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailer.models import Attachment, Inbound, Message, Ticket, TicketEvent

QUARANTINE_STATES = ("quarantined", "failed")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_dict(session: Session, ticket: Ticket, with_events: bool = False) -> dict[str, Any]:
    """One ticket as the export object."""
    messages = session.exec(select(Message).where(Message.ticket_id == ticket.id)
                            .order_by(col(Message.id))).all()
    out: dict[str, Any] = {
        "number": ticket.number, "status": ticket.status, "requester": ticket.requester,
        "subject": ticket.subject, "language": ticket.language, "category": ticket.category,
        "urgency": ticket.urgency, "tags": list(ticket.tags), "entities": dict(ticket.entities),
        "queue": ticket.queue, "sla_policy": ticket.sla_policy,
        "created_at": _iso(ticket.created_at), "updated_at": _iso(ticket.updated_at),
        "messages": [_message_dict(session, m) for m in messages],
    }
    if with_events:
        events = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                              .order_by(col(TicketEvent.id))).all()
        out["events"] = [{"at": _iso(e.at), "kind": e.kind, **e.detail} for e in events]
    return out


def _message_dict(session: Session, msg: Message) -> dict[str, Any]:
    atts = session.exec(select(Attachment).where(Attachment.message_row_id == msg.id)
                        .order_by(col(Attachment.id))).all()
    return {
        "message_id": msg.message_id, "direction": msg.direction, "kind": msg.kind,
        "from": msg.from_addr, "from_name": msg.from_name, "to": list(msg.to_addrs),
        "cc": list(msg.cc_addrs), "subject": msg.subject, "date": _iso(msg.date),
        "text": msg.text, "new_text": msg.new_text,
        "attachments": [{"filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "sha256": a.sha256, "inline": a.inline}
                        for a in atts],
    }


def iter_tickets(engine: Engine, status: str | None = None) -> Iterator[dict[str, Any]]:
    """Every ticket as an export object, oldest first."""
    with Session(engine) as session:
        stmt = select(Ticket).order_by(col(Ticket.id))
        if status:
            stmt = stmt.where(Ticket.status == status)
        for ticket in session.exec(stmt):
            yield ticket_dict(session, ticket)


def quarantine_rows(engine: Engine) -> list[dict[str, Any]]:
    """Mails held in quarantine or failed in the pipeline."""
    with Session(engine) as session:
        rows = session.exec(select(Inbound).where(col(Inbound.status).in_(QUARANTINE_STATES))
                            .order_by(col(Inbound.id))).all()
        return [{"id": r.id, "status": r.status, "reason": r.reason, "mailbox": r.mailbox,
                 "uid": r.uid, "message_id": r.message_id, "size": r.size,
                 "received_at": _iso(r.received_at), "has_raw": r.raw is not None}
                for r in rows]
