"""The outbox: the only way mail leaves.

Every send is a row with a unique ``dedupe_key`` (``ack:T-000123``), so enqueueing twice is
a no-op. The sender claims a batch of due rows (``claimed``), marks each one ``sending``
(committed) right before it is handed to the SMTP server, and records the outcome right
after. A claimed row whose daemon died before trying it simply goes back to ``pending``.
Which side of the DATA window we chose: **at most once**. A row found still ``sending``
after its lease (the daemon died between DATA and the status update) becomes ``uncertain``
and is never resent automatically; `mailer outbox retry ID` resends it after a human checked.
Its Message-ID was fixed at enqueue time, so even a manual resend is recognised as the same
mail by the recipient's client.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from mailer.models import Outbox, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboundMail:
    """A mail to enqueue."""

    key: str
    kind: str
    to: str
    template: str
    message_id: str
    ticket_id: int | None = None
    language: str | None = None
    automatic: bool = True
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)


def _values(item: OutboundMail, now: datetime) -> dict[str, Any]:
    return {
        "dedupe_key": item.key, "kind": item.kind, "automatic": item.automatic,
        "ticket_id": item.ticket_id, "to_addr": item.to.lower(), "template": item.template,
        "language": item.language, "context": item.context, "message_id": item.message_id,
        "in_reply_to": item.in_reply_to, "references": list(item.references),
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}


_TABLE = Outbox.__table__  # type: ignore[attr-defined]
# One compiled statement per dialect: INSERT ... ON CONFLICT (dedupe_key) DO NOTHING.
_INSERT = {name: make(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"])
           for name, make in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


def enqueue(session: Session, item: OutboundMail, now: datetime | None = None) -> bool:
    """Add ``item`` unless its key exists; True if it was added."""
    stmt = _INSERT[session.get_bind().dialect.name]
    result = session.execute(stmt, _values(item, now or utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def insert_many(session: Session, items: list[OutboundMail], now: datetime) -> None:
    """Enqueue many mails in one executemany; existing keys are skipped."""
    if items:
        stmt = _INSERT[session.get_bind().dialect.name]
        session.execute(stmt, [_values(item, now) for item in items])


def recover_stale(engine: Engine, now: datetime, lease_seconds: float) -> int:
    """Past their lease, ``claimed`` rows (never tried) go back to ``pending``; ``sending``
    rows (maybe delivered) become ``uncertain`` and are never resent by us."""
    cutoff = now - timedelta(seconds=lease_seconds)
    with Session(engine) as session:
        session.execute(update(Outbox).where(
            col(Outbox.status) == "claimed", col(Outbox.claimed_at) < cutoff,
        ).values(status="pending", claimed_at=None))
        result = session.execute(update(Outbox).where(
            col(Outbox.status) == "sending", col(Outbox.claimed_at) < cutoff,
        ).values(status="uncertain", last_error="interrupted between DATA and the result; "
                 "not resent automatically (see `mailer outbox retry`)"))
        session.commit()
        count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        log.warning("outbox: %d mail(s) interrupted mid-send marked uncertain", count)
    return count


def claim_due(engine: Engine, now: datetime, limit: int) -> list[Outbox]:
    """Mark up to ``limit`` due rows ``claimed`` and return them (committed first)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.exec(
            select(Outbox).where(col(Outbox.status) == "pending",
                                 col(Outbox.next_attempt_at) <= now)
            .order_by(col(Outbox.next_attempt_at), col(Outbox.id)).limit(limit)
            # Several daemons: each claims different rows (PostgreSQL; SQLite ignores it).
            .with_for_update(skip_locked=True)))
        for row in rows:
            row.status, row.claimed_at = "claimed", now
            session.add(row)
        session.commit()
    return rows


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after ``attempts`` failures: base, 2x, 4x ... up to ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def counts(engine: Engine) -> Counter[str]:
    """Rows per status."""
    with Session(engine) as session:
        return Counter(session.exec(select(Outbox.status)))


def mark_sending(engine: Engine, outbox_id: int, now: datetime) -> None:
    """Record (committed) that this row is about to be handed to the SMTP server."""
    with Session(engine) as session:
        session.execute(update(Outbox).where(col(Outbox.id) == outbox_id)
                        .values(status="sending", claimed_at=now))
        session.commit()
