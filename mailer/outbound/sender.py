"""The send-outbox job: claim due rows, send them on one SMTP connection, record outcomes.

4xx replies and connection errors retry with exponential backoff up to
``outbound.max_attempts``; 5xx replies are permanent and recorded on the ticket.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlmodel import Session

from mailer import tickets
from mailer.config import Config
from mailer.ingest.mail import Address, ParsedMail
from mailer.models import Customer, Outbox, Ticket, utcnow
from mailer.outbound.compose import compose
from mailer.outbound.outbox import backoff, claim_due, mark_sending, recover_stale
from mailer.sla.service import agent_replied
from mailer.smtp import SendResult, send_batch_sync
from mailer.templates.render import Rendered, Renderer

log = logging.getLogger(__name__)
OUTBOUND_KIND = {"ack": "ack", "reply": "agent", "notification": "notification"}


def send_due(engine: Engine, config: Config, renderer: Renderer, sender: object,
             now: datetime | None = None) -> Counter[str]:
    """One tick of the sender: returns counts per outcome."""
    now = now or utcnow()
    recover_stale(engine, now, config.outbound.sending_lease_seconds)
    rows = claim_due(engine, now, config.outbound.batch_size)
    if not rows:
        return Counter()
    prepared: dict[str, tuple[Outbox, Rendered]] = {}
    items: list[tuple[str, EmailMessage]] = []
    for row in rows:
        try:
            msg, rendered = compose(row, renderer, config, _code(engine, row.to_addr))
        except Exception as exc:  # a broken template must not block the other mails
            log.exception("outbox=%s cannot be composed", row.id)
            _record(engine, config, row, None, SendResult(str(row.id), False, True, None,
                                                            f"compose: {exc}"), now)
            continue
        prepared[str(row.id)] = (row, rendered)
        items.append((str(row.id), msg))
    outcome: Counter[str] = Counter()

    def on_result(result: SendResult) -> None:
        row, rendered = prepared[result.key]
        outcome[_record(engine, config, row, rendered, result, now)] += 1

    def before_send(key: str) -> None:
        mark_sending(engine, int(key), now)

    send_batch_sync(sender, items, on_result, before_send)  # type: ignore[arg-type]
    return outcome


def _code(engine: Engine, address: str) -> str | None:
    with Session(engine) as session:
        row = session.get(Customer, address.lower())
        return row.anti_phishing_code if row else None


def _record(engine: Engine, config: Config, row: Outbox, rendered: Rendered | None,
            result: SendResult, now: datetime) -> str:
    with Session(engine) as session:
        current = session.get(Outbox, row.id)
        assert current is not None
        status = _apply(current, result, config, now)
        session.add(current)
        if status == "sent" and rendered is not None and current.ticket_id is not None:
            _on_ticket(session, current, rendered, config)
        elif status == "failed" and current.ticket_id is not None:
            tickets.record_event(session, current.ticket_id, "delivery_failed",
                                 outbox_id=current.id, mail_kind=current.kind,
                                 error=(result.error or "")[:300])
        session.commit()
    log.info("outbox=%s key=%s status=%s code=%s", row.id, row.dedupe_key, status, result.code)
    return status


def _apply(row: Outbox, result: SendResult, config: Config, now: datetime) -> str:
    row.attempts += 1
    row.claimed_at = None
    if result.ok:
        row.status, row.sent_at, row.last_error = "sent", now, None
    elif result.permanent or row.attempts >= config.outbound.max_attempts:
        row.status, row.last_error = "failed", result.error
    else:
        delay = backoff(row.attempts, config.outbound.retry_base_seconds,
                        config.outbound.retry_max_seconds)
        row.status, row.last_error = "pending", result.error
        row.next_attempt_at = now + timedelta(seconds=delay)
    return row.status


def _on_ticket(session: Session, row: Outbox, rendered: Rendered, config: Config) -> None:
    """Keep what we sent on the ticket; an agent reply is the ticket's first response."""
    assert row.ticket_id is not None
    mail = ParsedMail(message_id=row.message_id, synthetic_id=False, subject=rendered.subject,
                      from_=Address(config.outbound.brand, config.smtp.from_address),
                      to=(Address("", row.to_addr),), date=row.sent_at, text=rendered.text,
                      new_text=rendered.text, in_reply_to=(row.in_reply_to,)
                      if row.in_reply_to else (), references=tuple(row.references))
    tickets.add_message(session, row.ticket_id, mail, kind=OUTBOUND_KIND.get(row.kind, row.kind),
                        direction="out")
    if row.kind == "reply":
        ticket = session.get(Ticket, row.ticket_id)
        if ticket is not None:
            agent_replied(config.sla, ticket, row.sent_at or utcnow())
            ticket.status = "open" if ticket.status == "new" else ticket.status
            session.add(ticket)


SenderFactory = Callable[[Config], object]
