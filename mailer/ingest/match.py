"""Threading: which ticket does a mail belong to?

In order: (1) In-Reply-To, then References from the nearest back: our own signed
Message-IDs (no lookup needed) and Message-IDs we have stored; (2) the subject token
``[#T-000123]``; (3) nothing, so a new ticket. A match is accepted only when the sender is
one of the ticket's participants (the requester, or someone who was on To/Cc of the
customer's mail): ticket numbers are guessable and Message-IDs travel, so neither alone
proves who is writing. A refused match is returned so the caller can record the attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session

from mailer import tickets
from mailer.ids import IdSigner
from mailer.ingest.mail import ParsedMail
from mailer.tickets import TicketRef

TOKEN = re.compile(r"\[#\s*(T-\d{1,12})\s*\]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A ticket the mail pointed at, refused because the sender is not a participant."""

    ticket: TicketRef
    method: str
    sender: str


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """The ticket found (None: open a new one), how, and any refused attempts."""

    ticket: TicketRef | None
    method: str
    refused: tuple[Refusal, ...] = ()


def find_thread(session: Session, mail: ParsedMail, signer: IdSigner) -> ThreadMatch:
    """Find the ticket ``mail`` continues."""
    sender = mail.from_.address if mail.from_ else ""
    refused: list[Refusal] = []
    for method, ticket in _candidates(session, mail, signer):
        if may_post(ticket, sender):
            return ThreadMatch(ticket, method, tuple(refused))
        refused.append(Refusal(ticket, method, sender))
    return ThreadMatch(None, "new", tuple(refused))


def _candidates(session: Session, mail: ParsedMail,
                signer: IdSigner) -> list[tuple[str, TicketRef]]:
    """At most one ticket by header and one by token, in that order."""
    found: list[tuple[str, TicketRef]] = []
    by_header = next((t for mid in _header_ids(mail) if (t := _by_id(session, signer, mid))),
                     None)
    if by_header:
        found.append(("header", by_header))
    token = subject_token(mail.subject)
    by_token = tickets.by_number(session, token) if token else None
    if by_token and (not by_header or by_token.id != by_header.id):
        found.append(("token", by_token))
    return found


def _header_ids(mail: ParsedMail) -> list[str]:
    return list(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]))


def _by_id(session: Session, signer: IdSigner, message_id: str) -> TicketRef | None:
    own = signer.verify(message_id)
    if own is not None:
        return tickets.by_number(session, own.number)
    return tickets.by_message_id(session, message_id)


def subject_token(subject: str) -> str | None:
    """The ticket number in a subject's ``[#T-000123]`` token, upper-cased, or None."""
    match = TOKEN.search(subject)
    return match.group(1).upper() if match else None


def may_post(ticket: TicketRef, sender: str) -> bool:
    """Whether ``sender`` may add to ``ticket``: exact, case-insensitive participant match."""
    return bool(sender) and sender.lower() in {p.lower() for p in ticket.participants}
