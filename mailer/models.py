"""Database tables (SQLModel ``table=True``). These rows stay in the DB layer.

The database is the queue: an ``inbound`` row is committed with the raw bytes before the
IMAP server hears that the mail was taken, and its ``status`` walks
``received -> processed | discarded | duplicate | quarantined | failed``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _list() -> list[Any]:
    # A plain function, not the builtin: pydantic inspects a builtin factory's signature on
    # every instance, which cost ~75 us per row.
    return []


def _dict() -> dict[str, Any]:
    return {}


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


class MailboxState(SQLModel, table=True):
    """Per-mailbox IMAP cursor: the UIDVALIDITY seen and the highest UID committed."""

    __tablename__ = "mailbox_state"
    name: str = Field(primary_key=True, max_length=200)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow)


class Inbound(SQLModel, table=True):
    """One mail as fetched: raw bytes plus where it came from and what became of it."""

    __tablename__ = "inbound"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_imap"),
        Index("ix_inbound_status", "status", "id"),
        Index("ix_inbound_imap_pending", "mailbox", "imap_done"),
    )
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=200)
    uidvalidity: int = Field(sa_type=BigInteger)
    uid: int = Field(sa_type=BigInteger)
    message_id: str = Field(max_length=1000, index=True)
    content_hash: str = Field(max_length=64)
    dedupe_key: str | None = Field(default=None, max_length=1100, unique=True)
    size: int
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: str = Field(default="received", max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duplicate_of: int | None = Field(default=None, foreign_key="inbound.id")
    imap_done: bool = Field(default=False)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    attempts: int = Field(default=0)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class Ticket(SQLModel, table=True):
    """A customer conversation."""

    __tablename__ = "ticket"
    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="new", max_length=20, index=True)
    requester: str = Field(max_length=320, index=True)
    requester_name: str = Field(default="", max_length=500)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    language: str | None = Field(default=None, max_length=16)
    category: str | None = Field(default=None, max_length=64)
    urgency: str | None = Field(default=None, max_length=16)
    queue: str | None = Field(default=None, max_length=64)
    sla_policy: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    entities: dict[str, Any] = Field(default_factory=_dict, sa_column=Column(JSON, nullable=False))
    participants: list[str] = Field(default_factory=_list,
                                    sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_customer_at: datetime | None = None
    first_response_at: datetime | None = None
    sla_state: dict[str, Any] = Field(default_factory=_dict,
                                      sa_column=Column(JSON, nullable=False))
    first_response_due_at: datetime | None = None
    next_update_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_next_at: datetime | None = Field(default=None, index=True)
    breached_at: datetime | None = None
    breached_targets: list[str] = Field(default_factory=_list,
                                        sa_column=Column(JSON, nullable=False))
    paused_since: datetime | None = None
    paused_seconds: float = 0.0

    @property
    def number(self) -> str:
        """The public ticket number, derived from the id: ``T-000123``."""
        return f"T-{self.id or 0:06d}"


class Message(SQLModel, table=True):
    """One mail on a ticket, inbound or outbound."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_sender_recent", "from_addr", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    message_id: str = Field(max_length=1000, index=True)
    direction: str = Field(max_length=3)
    kind: str = Field(max_length=20)
    from_addr: str = Field(default="", max_length=320)
    from_name: str = Field(default="", max_length=500)
    to_addrs: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    cc_addrs: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    reply_to: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    date: datetime | None = None
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    new_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    in_reply_to: str | None = Field(default=None, max_length=1000)
    references: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    defects: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Attachment(SQLModel, table=True):
    """An attachment's metadata; the bytes live on disk under their sha256."""

    __tablename__ = "attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_row_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    content_id: str | None = Field(default=None, max_length=1000)
    inline: bool = False


class TicketEvent(SQLModel, table=True):
    """The history of a ticket: opened, appended, reopened, a refused threading attempt."""

    __tablename__ = "ticket_event"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=_dict, sa_column=Column(JSON, nullable=False))


class Setting(SQLModel, table=True):
    """Small key/value facts the daemon keeps for itself (e.g. a generated signing secret)."""

    __tablename__ = "setting"
    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Outbox(SQLModel, table=True):
    """One mail to send. The only way mail leaves; ``dedupe_key`` makes enqueueing idempotent.

    ``status``: pending -> sending -> sent | failed | uncertain (killed between SMTP DATA and
    the status update: never resent automatically) | suppressed.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_recipient", "to_addr", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=20)
    automatic: bool = True
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    to_addr: str = Field(max_length=320)
    template: str = Field(max_length=100)
    language: str | None = Field(default=None, max_length=16)
    context: dict[str, Any] = Field(default_factory=_dict, sa_column=Column(JSON, nullable=False))
    message_id: str = Field(max_length=1000)
    in_reply_to: str | None = Field(default=None, max_length=1000)
    references: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class Customer(SQLModel, table=True):
    """Per-customer settings, such as the anti-phishing code shown in every mail to them."""

    __tablename__ = "customer"
    address: str = Field(primary_key=True, max_length=320)
    anti_phishing_code: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """An address we must not mail automatically until ``until`` (e.g. it bounced)."""

    __tablename__ = "suppression"
    address: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=200)
    until: datetime
