"""Typed records passed between ingest stages (no ORM rows here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: display name (decoded) and address (lower-cased)."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """One attachment or inline part, with its bytes and a sanitised file name."""

    filename: str
    content_type: str
    data: bytes
    sha256: str
    content_id: str | None = None
    inline: bool = False

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """Everything the pipeline needs from one raw mail, decoded and checked."""

    message_id: str
    synthetic_id: bool
    subject: str
    from_: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text: str = ""
    new_text: str = ""
    quoted_text: str = ""
    html: str | None = None
    attachments: tuple[ParsedAttachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "text/plain"
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        """The first decoded value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    def has_header(self, name: str) -> bool:
        """Whether header ``name`` is present."""
        return self.header(name) is not None


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """A mail as the source hands it over: where it is and its raw bytes."""

    uid: int
    raw: bytes | None
    size: int


@dataclass(frozen=True, slots=True)
class FetchBatch:
    """What one poll of one folder returned."""

    uidvalidity: int
    mails: tuple[FetchedMail, ...]
    more: bool = False
