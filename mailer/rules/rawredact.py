"""Redact secrets from the raw mail kept for audit.

Decision: we *redact* the stored raw bytes rather than encrypt them. A customer's seed
phrase or private key has no audit value (the ticket records that one was seen and of
which kind), while an encryption key able to reveal it would be one more secret to guard,
rotate and eventually leak with a backup. So every text part (and the Subject) is rewritten
with the secret replaced, re-encoded as UTF-8 base64; headers, structure and attachments
stay as received. If the mail cannot be re-serialised, the raw is replaced by a notice and
the redacted text on the ticket is what remains.
"""

from __future__ import annotations

import email
import logging
from email.header import Header
from email.message import Message

from mailer.ingest import decode
from mailer.rules.secrets import redact

log = logging.getLogger(__name__)
WITHHELD = b"X-Mailer-Redacted: raw withheld, it contained a secret\r\n\r\n"


def redact_raw(raw: bytes) -> bytes:
    """``raw`` with every secret in its text parts and Subject replaced."""
    try:
        msg = email.message_from_bytes(raw)
        _redact_subject(msg)
        for part in msg.walk():
            if part.get_content_maintype() == "text" and not part.is_multipart():
                _redact_part(part)
        msg["X-Mailer-Redacted"] = "yes"
        return msg.as_bytes()
    except Exception:  # never keep the secret because re-serialising failed
        log.warning("raw mail could not be re-serialised after redaction; withheld")
        return WITHHELD


def _redact_subject(msg: Message) -> None:
    subject, _ = decode.decode_header(str(msg.get("subject", "")))
    cleaned = redact(subject)
    if cleaned.kinds:
        del msg["subject"]
        msg["Subject"] = Header(cleaned.text, "utf-8").encode()


def _redact_part(part: Message) -> None:
    text, _ = decode.part_text(part)
    cleaned = redact(text)
    if not cleaned.kinds:
        return
    del part["content-transfer-encoding"]
    part.set_payload(cleaned.text, "utf-8")
