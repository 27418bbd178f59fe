"""Pipeline stages of the rules side: redact secrets, then classify.

``redact`` runs before anything of the mail is stored on a ticket: seed phrases, private
keys, passwords and API secrets are replaced in the subject, text and HTML, and the raw mail
kept for audit is rewritten the same way (see :mod:`mailer.rules.rawredact` for why we
redact rather than encrypt). ``classify`` detects the language, extracts entities and
evaluates the rules; the store stage applies the result.
"""

from __future__ import annotations

import dataclasses
import logging

from mailer.ingest.htmltext import html_to_text
from mailer.ingest.mail import ParsedMail
from mailer.pipeline import MessageContext, Services
from mailer.rules.classify import classify
from mailer.rules.rawredact import redact_raw
from mailer.rules.secrets import Redaction, redact

log = logging.getLogger(__name__)


def redact_mail(mail: ParsedMail) -> tuple[ParsedMail, tuple[str, ...]]:
    """``mail`` with secrets replaced in subject, texts and HTML, and the kinds found.

    HTML is kept only if its visible text is clean afterwards (a secret split across tags
    would survive a plain text replacement).
    """
    subject, text = redact(mail.subject), redact(mail.text)
    # new_text and quoted_text are pieces of text: only worth a look if text had a secret.
    new_text = redact(mail.new_text) if text.kinds else Redaction(mail.new_text, ())
    quoted = redact(mail.quoted_text) if text.kinds else Redaction(mail.quoted_text, ())
    found = [*subject.kinds, *text.kinds, *new_text.kinds, *quoted.kinds]
    html = mail.html
    if html is not None:
        cleaned = redact(html)
        found.extend(cleaned.kinds)
        if cleaned.kinds or text.kinds:
            html = cleaned.text if not redact(html_to_text(cleaned.text)).kinds else None
    kinds = tuple(dict.fromkeys(found))
    if not kinds:
        return mail, ()
    return dataclasses.replace(mail, subject=subject.text, text=text.text,
                               new_text=new_text.text, quoted_text=quoted.text,
                               html=html), kinds


class RedactStage:
    """Replace secrets in everything we keep of the mail."""

    name = "redact"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        ctx.parsed, kinds = redact_mail(ctx.mail)
        if not kinds:
            return
        ctx.secrets = kinds
        ctx.raw_replacement = redact_raw(ctx.raw)
        log.info("inbound=%s redacted secrets kinds=%s", ctx.inbound_id, ",".join(kinds))


class ClassifyStage:
    """Language, entities and the rules' Decision, kept on the context for the store stage."""

    name = "classify"

    def process(self, ctx: MessageContext, services: Services) -> None:
        """See `Stage`."""
        found = classify(ctx.mail, services.rules, is_reply=ctx.ticket_id is not None,
                         is_machine=ctx.kind != "customer", secrets=ctx.secrets)
        ctx.classification = dataclasses.replace(found, extra_tags=tuple(ctx.tags))
