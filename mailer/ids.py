"""Our own Message-IDs: recognisable, tied to a ticket, and unforgeable.

Form: ``<{kind}.{number}.{nonce}.{sig}@{domain}>`` where ``sig`` is an HMAC-SHA256 over
kind, number and nonce with a secret only the daemon knows. A customer who replies to one
of our mails carries it in In-Reply-To/References and we thread on it without a database
lookup; someone who edits the number breaks the signature and is not threaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_OWN = re.compile(
    r"^<([a-z][a-z0-9-]{0,19})\.(T-\d{1,12})\.([a-z0-9]{1,32})\.([a-z0-9]{16,32})@([^<>\s]+)>$"
)


@dataclass(frozen=True, slots=True)
class OwnId:
    """What a verified Message-ID of ours says."""

    kind: str
    number: str


class IdSigner:
    """Makes and verifies our Message-IDs."""

    def __init__(self, secret: bytes, domain: str) -> None:
        self._secret = secret
        self.domain = domain.lower()

    def make(self, kind: str, number: str, nonce: str | None = None) -> str:
        """A new Message-ID for mail of ``kind`` on ticket ``number``."""
        nonce = nonce or secrets.token_hex(6)
        return f"<{kind}.{number}.{nonce}.{self._sign(kind, number, nonce)}@{self.domain}>"

    def verify(self, message_id: str) -> OwnId | None:
        """The kind and ticket number of one of our Message-IDs, or None."""
        match = _OWN.match(message_id.strip())
        if not match or match.group(5).lower() != self.domain:
            return None
        kind, number, nonce, sig = match.group(1, 2, 3, 4)
        if not hmac.compare_digest(sig, self._sign(kind, number, nonce)):
            return None
        return OwnId(kind, number)

    def _sign(self, kind: str, number: str, nonce: str) -> str:
        mac = hmac.new(self._secret, f"{kind}.{number}.{nonce}".encode(), hashlib.sha256)
        return base64.b32encode(mac.digest()[:15]).decode().lower()
