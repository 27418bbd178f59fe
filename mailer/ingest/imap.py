"""IMAP source (imapclient): UIDs + UIDVALIDITY, BODY.PEEK[], flag or move after commit.

Every imapclient/imaplib/socket error is translated here, once, into
:class:`ImapConnectError`; nothing above this module sees a library exception.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from imapclient import IMAPClient

from mailer.config import MailboxConfig
from mailer.errors import ImapConnectError
from mailer.ingest.mail import FetchedMail

log = logging.getLogger(__name__)
FETCH_CHUNK = 100
SEEN = b"\\Seen"


class MailSource(Protocol):
    """The seam the poller talks to: a real IMAP folder or a fake."""

    def open(self) -> int:
        """Connect and select the folder; return its UIDVALIDITY."""

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid``, ascending."""

    def fetch(self, uids: Sequence[int], max_bytes: int) -> list[FetchedMail]:
        """The mails with these UIDs; oversized ones come with ``raw=None``."""

    def mark_done(self, uids: Sequence[int]) -> None:
        """Flag \\Seen or move to the processed folder."""

    def close(self) -> None:
        """Log out; never raises."""


@contextmanager
def _translated(mailbox: str, action: str) -> Iterator[None]:
    try:
        yield
    except ImapConnectError:
        raise
    except (imaplib.IMAP4.error, OSError, ssl.SSLError, EOFError, ValueError) as exc:
        raise ImapConnectError(mailbox, f"{action}: {type(exc).__name__}: {exc}") from exc


class ImapSource:
    """A folder on an IMAP server, read by UID."""

    def __init__(self, box: MailboxConfig, password: str) -> None:
        self.box = box
        self._password = password
        self._client: IMAPClient | None = None

    def open(self) -> int:
        """See `MailSource`."""
        box = self.box
        with _translated(box.name, f"connect to {box.host}:{box.port}"):
            client = IMAPClient(box.host, port=box.port, ssl=box.security == "ssl",
                                timeout=box.timeout_seconds)
            self._client = client
            if box.security == "starttls":
                client.starttls(ssl.create_default_context())
        with _translated(box.name, f"login as {box.username}"):
            client.login(box.username, self._password)
        with _translated(box.name, f"select {box.folder}"):
            if box.processed_folder and not client.folder_exists(box.processed_folder):
                client.create_folder(box.processed_folder)
            info = client.select_folder(box.folder)
        return int(info[b"UIDVALIDITY"])

    @property
    def client(self) -> IMAPClient:
        """The connected client."""
        if self._client is None:
            raise ImapConnectError(self.box.name, "not connected")
        return self._client

    def uids_after(self, last_uid: int) -> list[int]:
        """See `MailSource`."""
        with _translated(self.box.name, "search"):
            found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(int(u) for u in found if int(u) > last_uid)

    def fetch(self, uids: Sequence[int], max_bytes: int) -> list[FetchedMail]:
        """See `MailSource`."""
        with _translated(self.box.name, "fetch"):
            sizes = self.client.fetch(list(uids), ["RFC822.SIZE"])
            wanted = [u for u in uids if _size(sizes.get(u)) <= max_bytes]
            bodies = self.client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        return [_fetched(u, sizes.get(u), bodies.get(u)) for u in uids
                if u in sizes or u in bodies]

    def mark_done(self, uids: Sequence[int]) -> None:
        """See `MailSource`."""
        if not uids:
            return
        with _translated(self.box.name, "flag"):
            if self.box.processed_folder:
                self._move(list(uids), self.box.processed_folder)
            else:
                self.client.add_flags(list(uids), [SEEN], silent=True)

    def _move(self, uids: list[int], folder: str) -> None:
        if self.client.has_capability("MOVE"):
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.delete_messages(uids, silent=True)
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()

    def close(self) -> None:
        """See `MailSource`."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # closing a broken connection: nothing more to do
            log.debug("logout from %s failed", self.box.name, exc_info=True)
            _shutdown(client)


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # already closed
        log.debug("socket shutdown failed", exc_info=True)


def _size(data: dict[bytes, Any] | None) -> int:
    return int(data.get(b"RFC822.SIZE", 0)) if data else 0


def _fetched(uid: int, size: dict[bytes, Any] | None, body: dict[bytes, Any] | None) -> FetchedMail:
    raw = body.get(b"BODY[]") if body else None
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return FetchedMail(uid=uid, raw=raw, size=_size(size) or len(raw or b""))


__all__ = ["FETCH_CHUNK", "ImapSource", "MailSource"]
