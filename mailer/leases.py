"""Work sharing between daemons on one PostgreSQL.

A mailbox is polled and its mail processed by one daemon at a time: the daemon holds a
session-level advisory lock (``pg_try_advisory_lock``) on a dedicated connection while it
works on that mailbox, and others skip the mailbox for this tick. PostgreSQL releases the
lock when the connection goes away, so a daemon killed with SIGKILL hands its mailboxes over
as soon as the server notices the dead connection. Outbox rows and SLA work are claimed row
by row with ``FOR UPDATE SKIP LOCKED`` instead (see the outbox and SLA modules).

SQLite is for one daemon: the lease is always granted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (advisory locks take a bigint)."""
    digest = hashlib.sha256(f"mailer:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def mailbox_lease(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True if this daemon may work on mailbox ``name`` now."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    with engine.connect() as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
