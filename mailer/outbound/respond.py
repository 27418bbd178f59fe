"""The respond stage: what a stored mail makes us send, enqueued in the same transaction.

* A new ticket from a person: an acknowledgement to the customer (unless loop safety
  forbids it) and a notification to the agents' queue address.
* An agent's answer (a reply to one of our signed Message-IDs from an agent address): its
  new text is relayed to the customer as a public reply; a reply starting with ``#note``
  stays internal.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, col, select

from mailer import tickets
from mailer.models import Message, Ticket, utcnow
from mailer.outbound.outbox import OutboundMail, enqueue
from mailer.outbound.policy import header_refusal, recipient_refusal
from mailer.pipeline import MessageContext, Services

log = logging.getLogger(__name__)
NOTE_PREFIX = "#note"


class RespondStage:
    """Enqueue acknowledgements, notifications and agent replies."""

    name = "respond"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        if ctx.ticket_id is None:
            return
        if ctx.kind == "agent":
            relay_agent_reply(services, ctx.ticket_id, ctx.mail.new_text, ctx.inbound_id,
                              ctx.mail.from_.name if ctx.mail.from_ else "")
        elif ctx.outcome == "opened" and ctx.kind == "customer":
            _acknowledge(ctx, services)
            _notify(ctx, services)


def _acknowledge(ctx: MessageContext, services: Services) -> None:
    mail, config, session = ctx.mail, services.config, services.session
    assert ctx.ticket_id is not None and ctx.ticket_number is not None
    requester = mail.from_.address if mail.from_ else ""
    refusal = header_refusal(mail, config.support.message_id_domain) or recipient_refusal(
        session, config, requester, utcnow())
    if refusal:
        tickets.record_event(session, ctx.ticket_id, "ack_suppressed", reason=refusal)
        log.info("ticket=%s no acknowledgement: %s", ctx.ticket_number, refusal)
        return
    found = ctx.classification
    urgency = found.urgency if found else None
    enqueue(session, OutboundMail(
        key=f"ack:{ctx.ticket_number}", kind="ack", to=requester, template="ack",
        message_id=services.signer.make("ack", ctx.ticket_number), ticket_id=ctx.ticket_id,
        language=found.language if found else None, in_reply_to=mail.message_id,
        references=(*mail.references, mail.message_id),
        context={"number": ctx.ticket_number, "subject": mail.subject,
                 "customer_name": mail.from_.name if mail.from_ else "",
                 "category": found.decision.category if found else "general",
                 "entities": found.entities if found else {},
                 "response_hours": config.outbound.hours_for(urgency),
                 "secret_seen": bool(ctx.secrets)}))


def _notify(ctx: MessageContext, services: Services) -> None:
    queue = services.config.agents.queue_address
    if not queue:
        return
    assert ctx.ticket_id is not None and ctx.ticket_number is not None
    found, mail = ctx.classification, ctx.mail
    enqueue(services.session, OutboundMail(
        key=f"notify:{ctx.ticket_number}", kind="notification", to=queue,
        template="notification", message_id=services.signer.make("notify", ctx.ticket_number),
        ticket_id=ctx.ticket_id, language="en",
        context={"number": ctx.ticket_number, "subject": mail.subject,
                 "requester": mail.from_.address if mail.from_ else "",
                 "category": found.decision.category if found else "general",
                 "urgency": found.urgency if found else "normal",
                 "language": found.language if found else None,
                 "entities": found.entities if found else {},
                 "text": mail.new_text[:8000], "secret_seen": bool(ctx.secrets),
                 "hits": list(found.decision.hits) if found else []}))


def relay_agent_reply(services: Services, ticket_id: int, text: str, key: int | str,
                      agent_name: str) -> str:
    """Relay an agent's text to the customer (or keep a ``#note``); returns the kind."""
    body = text.strip()
    if body.lower().startswith(NOTE_PREFIX):
        return "note"
    session = services.session
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None
    thread = _thread_ids(session, ticket_id)
    enqueue(session, OutboundMail(
        key=f"reply:{ticket.number}:{key}", kind="reply", to=ticket.requester, template="reply",
        message_id=services.signer.make("reply", ticket.number), ticket_id=ticket_id,
        language=ticket.language, automatic=False,
        in_reply_to=thread[-1] if thread else None, references=tuple(thread[:-1]),
        context=_reply_context(ticket, body, agent_name)))
    return "agent"


def _reply_context(ticket: Ticket, body: str, agent_name: str) -> dict[str, Any]:
    return {"number": ticket.number, "subject": ticket.subject,
            "customer_name": ticket.requester_name, "body": body, "agent_name": agent_name}


def _thread_ids(session: Session, ticket_id: int) -> list[str]:
    """Message-IDs of the customer conversation, oldest first (no internal mail)."""
    rows = session.exec(select(Message.message_id).where(
        Message.ticket_id == ticket_id,
        col(Message.kind).in_(("customer", "ack", "agent"))).order_by(col(Message.id)))
    return list(rows)
