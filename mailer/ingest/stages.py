"""The ingest stages: parse, screen, machine, thread, store.

Each is small and named; :mod:`mailer.pipeline` runs them in one transaction per message.
"""

from __future__ import annotations

import logging
from typing import Any

from mailer import tickets
from mailer.errors import ParseError
from mailer.ingest import machine, trust
from mailer.ingest.attachments import AttachmentStore
from mailer.ingest.match import find_thread
from mailer.ingest.parse import parse_mail
from mailer.models import utcnow
from mailer.outbound import bounces
from mailer.pipeline import Discard, Hold, MessageContext, Services

log = logging.getLogger(__name__)
HEADER_CONTROL = ("\r", "\n", "\x00")


class ParseStage:
    """Raw bytes -> ParsedMail; an unparseable mail is held in quarantine."""

    name = "parse"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        try:
            ctx.parsed = parse_mail(ctx.raw, ctx.message_id)
        except ParseError as exc:
            raise Hold(f"unparseable: {exc.reason}", str(exc)) from exc


class ScreenStage:
    """Refuse what must not become a ticket as is: header injection, no sender, ourselves."""

    name = "screen"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        mail = ctx.mail
        names = [mail.subject, *(a.name for a in (mail.from_, *mail.to, *mail.cc) if a)]
        if any(c in value for value in names for c in HEADER_CONTROL):
            # A decoded header carrying CR/LF is an injection attempt: echoing it into a
            # reply's headers would let the sender add Bcc: lines. Keep it for a human.
            raise Hold("header-injection", "a decoded header contains CR, LF or NUL")
        if mail.from_ is None:
            raise Hold("no-sender", "no usable From address")
        if mail.from_.address in services.config.support.addresses:
            raise Discard("from-support-address")


class MachineStage:
    """Bounces and list mail open nothing; auto-replies are marked as such."""

    name = "machine"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        verdict = machine.classify(ctx.mail)
        if verdict == "bounce":
            failed = bounces.failed_recipients(ctx.raw)
            days = services.config.outbound.suppress_bounced_days
            raise Discard("bounce", bounces.suppress(failed, days, "permanent bounce")
                          if failed else None)
        if verdict == "list":
            raise Discard(verdict)
        if verdict == "auto_reply":
            ctx.kind = "auto_reply"


class ThreadStage:
    """Find the ticket this mail continues; record refused attempts on that ticket."""

    name = "thread"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        if _agent_reply(ctx, services):
            return
        if _untrusted_sensitive(ctx, services):
            return  # a new ticket: never ride on an existing conversation
        match = find_thread(services.session, ctx.mail, services.signer)
        for refusal in match.refused:
            tickets.record_event(services.session, refusal.ticket.id, "thread_refused",
                                 method=refusal.method, sender=refusal.sender,
                                 message_id=ctx.mail.message_id)
            ctx.notes.append(f"refused:{refusal.ticket.number}:{refusal.method}")
        if match.ticket is not None and match.ticket.status == "closed":
            if ctx.kind == "auto_reply":  # an out-of-office never opens a ticket
                raise Discard("auto-reply-to-closed-ticket")
            ctx.notes.append(f"follow-up-of:{match.ticket.number}")
            return
        if match.ticket is not None:
            ctx.ticket_id, ctx.ticket_number = match.ticket.id, match.ticket.number
        elif ctx.kind == "auto_reply":
            raise Discard("auto-reply-without-ticket")
        else:
            _group_flood(ctx, services)


def _untrusted_sensitive(ctx: MessageContext, services: Services) -> bool:
    """Tag a mail that fails SPF/DKIM/DMARC; if it also asks for something sensitive,
    keep it out of every existing thread."""
    results = trust.auth_results(ctx.mail, services.config.support.authserv_id)
    if not trust.auth_failed(results):
        return False
    ctx.tags.append("auth-failed")
    if not trust.is_sensitive(ctx.mail):
        return False
    ctx.tags.append("sensitive-request")
    ctx.notes.append("not threaded: failed authentication on a sensitive request")
    return True


def _group_flood(ctx: MessageContext, services: Services) -> None:
    """Beyond the flood limit, new mail joins the sender's (domain's) latest ticket."""
    mail, support = ctx.mail, services.config.support
    if mail.from_ is None:
        return
    grouped = tickets.flood_target(services.session, mail.from_.address,
                                   support.flood_per_sender_per_hour,
                                   support.flood_per_domain_per_hour, utcnow())
    if grouped is not None:
        ctx.ticket_id, ctx.ticket_number = grouped.id, grouped.number
        ctx.tags.append("flood")
        ctx.notes.append("flood-grouped")
        tickets.record_event(services.session, grouped.id, "flood_grouped",
                             sender=mail.from_.address, message_id=mail.message_id)


def _agent_reply(ctx: MessageContext, services: Services) -> bool:
    """An agent answering one of our signed mails: mark it and attach it to that ticket."""
    mail = ctx.mail
    if mail.from_ is None or not services.config.agents.is_agent(mail.from_.address):
        return False
    for mid in (*mail.in_reply_to, *reversed(mail.references)):
        own = services.signer.verify(mid)
        ticket = tickets.by_number(services.session, own.number) if own else None
        if ticket is not None:
            ctx.kind, ctx.ticket_id, ctx.ticket_number = "agent", ticket.id, ticket.number
            if mail.new_text.strip().lower().startswith("#note"):
                ctx.kind = "note"
            return True
    return False


class StoreStage:
    """Open a ticket or append to the matched one; store attachments content-addressed."""

    name = "store"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        session, mail = services.session, ctx.mail
        support = services.config.support.addresses
        found = ctx.classification
        if ctx.kind in ("agent", "note"):
            assert ctx.ticket_id is not None
            ctx.outcome = "agent_reply" if ctx.kind == "agent" else "note"
            tickets.record_event(session, ctx.ticket_id, ctx.outcome, message_id=mail.message_id,
                                 agent=mail.from_.address if mail.from_ else "")
            # The agent's own mail (with our notification quoted) stays internal; what the
            # customer sees is stored as kind "agent" once it has been sent.
            tickets.add_message(session, ctx.ticket_id, mail,
                                kind="agent_mail" if ctx.kind == "agent" else "note",
                                inbound_id=ctx.inbound_id)
            return
        if ctx.ticket_id is None:
            ref = tickets.open_ticket(session, mail, support, found, services.config.sla)
            ctx.ticket_id, ctx.ticket_number, ctx.outcome = ref.id, ref.number, "opened"
        else:
            human = ctx.kind == "customer"
            reopened = tickets.note_customer_mail(session, ctx.ticket_id, mail, support,
                                                  reopen=human, found=found if human else None,
                                                  sla=services.config.sla)
            ctx.outcome = "reopened" if reopened else "appended"
        tickets.record_event(session, ctx.ticket_id, ctx.outcome, message_id=mail.message_id,
                             message_kind=ctx.kind, notes=ctx.notes, **_why(ctx))
        if ctx.secrets:
            tickets.record_event(session, ctx.ticket_id, "secret_redacted",
                                 kinds=list(ctx.secrets), message_id=mail.message_id)
        row_id = tickets.add_message(session, ctx.ticket_id, mail, kind=ctx.kind,
                                     inbound_id=ctx.inbound_id)
        if mail.attachments:
            store = AttachmentStore(services.config.storage.attachments_dir)
            store.save_all(session, row_id, mail.attachments)


def _why(ctx: MessageContext) -> dict[str, Any]:
    """Why the ticket got its category: the classification and the rules that hit."""
    found = ctx.classification
    if found is None:
        return {}
    d = found.decision
    return {"category": d.category, "urgency": found.urgency, "language": found.language,
            "hits": list(d.hits), "rules_missed": len(d.misses)}
