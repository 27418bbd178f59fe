"""The one error tree of mailer.

::

    MailerError
    ├── ConfigError            bad configuration value (carries the key path)
    ├── StorageError           database or attachment store failure
    ├── IngestError
    │   ├── ImapConnectError   IMAP server unreachable, login refused, connection dropped
    │   └── ParseError         a mail that cannot be turned into a ParsedMail
    ├── DeliveryError
    │   ├── TemporaryDeliveryError
    │   └── PermanentDeliveryError
    └── RuleError

Library errors are translated once, at the boundary, with ``raise ... from exc``.
Stop signals (``Discard``, ``Hold``) live in :mod:`mailer.pipeline`; they are not errors.
"""

from __future__ import annotations


class MailerError(Exception):
    """Root of every error mailer raises on purpose."""


class ConfigError(MailerError):
    """A configuration value is missing or invalid; ``key`` names where."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class StorageError(MailerError):
    """The database or the attachment store failed."""


class IngestError(MailerError):
    """Fetching or parsing inbound mail failed."""


class ImapConnectError(IngestError):
    """The IMAP server could not be reached, refused us, or dropped the connection."""

    def __init__(self, mailbox: str, message: str) -> None:
        super().__init__(f"mailbox {mailbox!r}: {message}")
        self.mailbox = mailbox


class ParseError(IngestError):
    """A raw mail could not be parsed; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DeliveryError(MailerError):
    """Sending a mail failed."""


class TemporaryDeliveryError(DeliveryError):
    """A 4xx reply or a connection error: retry later."""


class PermanentDeliveryError(DeliveryError):
    """A 5xx reply: do not retry."""


class RuleError(MailerError):
    """A rule could not be evaluated."""
