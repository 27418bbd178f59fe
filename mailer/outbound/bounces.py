"""Delivery status notifications (RFC 3464): which recipients failed for good.

A permanently failed recipient is suppressed for ``outbound.suppress_bounced_days``: no more
automatic mail to it, which also stops a bounce loop with a broken mailbox.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from datetime import timedelta
from email.message import Message

from sqlmodel import Session

from mailer.models import Suppression, utcnow

_ADDRESS = re.compile(r"([^\s<>;]+@[^\s<>;]+)")


def failed_recipients(raw: bytes) -> list[str]:
    """Addresses a DSN reports as permanently failed (Action: failed, Status 5.x.x)."""
    msg = email.message_from_bytes(raw)
    found: list[str] = []
    for value in msg.get_all("x-failed-recipients", []):
        found.extend(a.lower() for a in _ADDRESS.findall(str(value)))
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            found.extend(_from_status(part))
    return list(dict.fromkeys(found))


def _from_status(part: Message) -> list[str]:
    blocks = part.get_payload()
    out = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Message):
            continue
        action = str(block.get("action", "")).strip().lower()
        status = str(block.get("status", "")).strip()
        match = _ADDRESS.search(str(block.get("final-recipient", "")))
        if match and action == "failed" and status.startswith("5"):
            out.append(match.group(1).lower())
    return out


def suppress(addresses: list[str], days: int, reason: str) -> Callable[[Session], None]:
    """A ``Discard.keep`` callback recording the suppressions."""

    def keep(session: Session) -> None:
        until = utcnow() + timedelta(days=days)
        for address in addresses:
            row = session.get(Suppression, address) or Suppression(
                address=address, reason=reason, until=until)
            row.reason, row.until = reason, until
            session.add(row)
    return keep
