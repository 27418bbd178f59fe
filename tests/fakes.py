"""Fakes at our own seams (not mocks of library internals)."""

from __future__ import annotations

from collections.abc import Sequence

from mailer.ingest.mail import FetchedMail


class FakeSource:
    """An in-memory folder implementing `MailSource`."""

    def __init__(self, uidvalidity: int = 1) -> None:
        self.uidvalidity = uidvalidity
        self.mails: dict[int, bytes] = {}
        self.done: set[int] = set()
        self.opened = 0

    def deliver(self, raw: bytes) -> int:
        uid = max(self.mails, default=0) + 1
        self.mails[uid] = raw
        return uid

    def open(self) -> int:
        self.opened += 1
        return self.uidvalidity

    def uids_after(self, last_uid: int) -> list[int]:
        return sorted(u for u in self.mails if u > last_uid)

    def fetch(self, uids: Sequence[int], max_bytes: int) -> list[FetchedMail]:
        return [FetchedMail(u, self.mails[u] if len(self.mails[u]) <= max_bytes else None,
                            len(self.mails[u])) for u in uids if u in self.mails]

    def mark_done(self, uids: Sequence[int]) -> None:
        self.done.update(uids)

    def close(self) -> None:
        pass
