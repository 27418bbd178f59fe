"""Build the MIME message for an outbox row: template, anti-phishing code, threading headers.

Nothing from a customer's mail reaches a header unescaped: subjects are rendered from
templates that replace CR/LF and control characters, and the ``email`` package refuses any
header value that still contains a line break.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Any

from mailer.config import Config
from mailer.models import Outbox, utcnow
from mailer.outbound.policy import LOOP_HEADER
from mailer.templates.render import Rendered, Renderer

MAX_REFERENCES = 10


def trim_references(references: list[str]) -> list[str]:
    """RFC 5322-style trimming: keep the first (the thread root) and the most recent ones."""
    refs = list(dict.fromkeys(references))
    if len(refs) <= MAX_REFERENCES:
        return refs
    return [refs[0], *refs[-(MAX_REFERENCES - 1):]]


def compose(row: Outbox, renderer: Renderer, config: Config,
            anti_phishing_code: str | None) -> tuple[EmailMessage, Rendered]:
    """The message to send for ``row`` and the rendered parts (kept on the ticket)."""
    context: dict[str, Any] = {**row.context, "anti_phishing_code": anti_phishing_code,
                               "brand": config.outbound.brand}
    rendered = renderer.render(row.template, row.language, context)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((config.outbound.brand, config.smtp.from_address))
    msg["To"] = row.to_addr
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = row.message_id
    if row.in_reply_to:
        msg["In-Reply-To"] = row.in_reply_to
    refs = trim_references([*row.references, *([row.in_reply_to] if row.in_reply_to else [])])
    if refs:
        msg["References"] = " ".join(refs)
    if row.automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = config.support.message_id_domain
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg, rendered
