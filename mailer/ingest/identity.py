"""A mail's identity before it is parsed: Message-ID and content hash.

Computed at poll time from the header block only, so deduplication costs little. The hash
covers the body and the headers that make a mail what it is (From, To, Cc, Date, Subject,
Message-ID) but not the trace headers a redelivery changes (Received, Delivered-To,
Return-Path): the same mail delivered twice hashes the same, while a sender reusing a
Message-ID for a different mail does not.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser

SYNTHETIC_DOMAIN = "mailer.invalid"
HASHED_HEADERS = ("from", "to", "cc", "date", "subject", "message-id")
_MSGID = re.compile(r"<([^<>\s]{1,900})>")


@dataclass(frozen=True, slots=True)
class Identity:
    """Message-ID (synthetic when missing) and the content hash."""

    message_id: str
    synthetic: bool
    content_hash: str

    @property
    def dedupe_key(self) -> str:
        """The key that makes a mail stored once."""
        return f"{self.message_id}|{self.content_hash}"


def identify(raw: bytes) -> Identity:
    """Compute the identity of ``raw``."""
    body_at = _body_offset(raw)
    headers = BytesHeaderParser().parsebytes(raw[:body_at])
    digest = hashlib.sha256()
    for name in HASHED_HEADERS:
        for value in headers.get_all(name, []):
            digest.update(f"{name}:{' '.join(str(value).split())}\n".encode("utf-8", "replace"))
    digest.update(b"\n")
    digest.update(raw[body_at:].replace(b"\r\n", b"\n"))
    content_hash = digest.hexdigest()
    found = normalize_message_id(str(headers.get("message-id", "") or ""))
    if found:
        return Identity(found, False, content_hash)
    return Identity(f"<{content_hash[:40]}@{SYNTHETIC_DOMAIN}>", True, content_hash)


def normalize_message_id(value: str) -> str | None:
    """``<id@host>`` from a header value, ignoring folding and comments; None if absent."""
    match = _MSGID.search(value)
    if match:
        return f"<{match.group(1)}>"
    token = value.strip()
    if token and " " not in token and "@" in token and len(token) < 900:
        return f"<{token.strip('<>')}>"
    return None


def message_id_list(value: str | None) -> tuple[str, ...]:
    """Every ``<id>`` in an In-Reply-To or References value, in order, without repeats."""
    if not value:
        return ()
    return tuple(dict.fromkeys(f"<{m}>" for m in _MSGID.findall(value)))


def _body_offset(raw: bytes) -> int:
    """Offset of the body: after the first empty line (CRLF or LF), or the end."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
    return min(ends) if ends else len(raw)
