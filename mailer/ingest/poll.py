"""Poll stage: new mail in an IMAP folder -> committed ``inbound`` rows.

Order of operations, and why:

1. Finish what a previous run committed but did not flag (a kill between commit and flag):
   flag/move those UIDs now. Nothing is fetched twice because the cursor was committed.
2. Compare UIDVALIDITY with the stored one; on a change, rescan from UID 1. Deduplication
   by Message-ID + content hash makes the rescan store nothing twice.
3. Fetch UIDs above the cursor, oldest first, at most ``max_per_run``, in chunks. Each chunk
   is inserted and the cursor advanced in one transaction; only after that commit is the
   chunk flagged \\Seen (or moved), and the rows marked ``imap_done``.

A mail larger than ``max_message_bytes`` is not downloaded: it is recorded in quarantine
without its bytes and left untouched on the server, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailer.config import MailboxConfig
from mailer.ingest.identity import identify
from mailer.ingest.imap import FETCH_CHUNK, MailSource
from mailer.ingest.mail import FetchedMail
from mailer.models import Inbound, MailboxState, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """Counts for one poll of one mailbox."""

    mailbox: str
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    too_large: int = 0
    more: bool = False


def poll_mailbox(engine: Engine, source: MailSource, box: MailboxConfig,
                 max_bytes: int) -> PollResult:
    """Fetch new mail of one mailbox into the database; see the module docstring."""
    try:
        uidvalidity = source.open()
        _finish_pending(engine, source, box.name, uidvalidity)
        last_uid = _cursor(engine, box.name, uidvalidity)
        uids = source.uids_after(last_uid)
        todo = uids[: box.max_per_run]
        totals = PollResult(box.name, more=len(uids) > len(todo))
        for start in range(0, len(todo), FETCH_CHUNK):
            chunk = todo[start:start + FETCH_CHUNK]
            mails = source.fetch(chunk, max_bytes)
            totals = _add(totals, _store_chunk(engine, box.name, uidvalidity, chunk, mails))
            source.mark_done([m.uid for m in mails if m.raw is not None])
            _mark_imap_done(engine, box.name, uidvalidity, chunk)
        return totals
    finally:
        source.close()


def _add(a: PollResult, b: PollResult) -> PollResult:
    return PollResult(a.mailbox, a.fetched + b.fetched, a.stored + b.stored,
                      a.duplicates + b.duplicates, a.too_large + b.too_large, a.more)


def _finish_pending(engine: Engine, source: MailSource, name: str, uidvalidity: int) -> None:
    with Session(engine) as session:
        stmt = select(Inbound.uid).where(Inbound.mailbox == name, Inbound.uidvalidity ==
                                         uidvalidity, col(Inbound.imap_done).is_(False))
        uids = sorted(session.exec(stmt))
    if uids:
        log.info("mailbox=%s flagging %d mails committed by an earlier run", name, len(uids))
        source.mark_done(uids)
        _mark_imap_done(engine, name, uidvalidity, uids)


def _cursor(engine: Engine, name: str, uidvalidity: int) -> int:
    """The last committed UID; resets (and records) a changed UIDVALIDITY."""
    with Session(engine) as session:
        state = session.get(MailboxState, name) or MailboxState(name=name)
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity is not None:
                log.warning("mailbox=%s UIDVALIDITY changed %s -> %s: rescanning", name,
                            state.uidvalidity, uidvalidity)
            state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, 0, utcnow()
            session.add(state)
            session.commit()
        return state.last_uid


def _store_chunk(engine: Engine, name: str, uidvalidity: int, chunk: Sequence[int],
                 mails: Sequence[FetchedMail]) -> PollResult:
    try:
        return _insert(engine, name, uidvalidity, chunk, mails)
    except IntegrityError:
        # Another daemon stored one of these mails in the meantime (the same mail in two
        # mailboxes). Retry: the second pass sees its row and records a duplicate.
        log.info("mailbox=%s concurrent insert, retrying chunk", name)
        return _insert(engine, name, uidvalidity, chunk, mails)


def _insert(engine: Engine, name: str, uidvalidity: int, chunk: Sequence[int],
            mails: Sequence[FetchedMail]) -> PollResult:
    rows = [_row(name, uidvalidity, m) for m in mails]
    table = Inbound.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        known = _existing(session, [r["dedupe_key"] for r in rows if r["dedupe_key"]])
        seen: set[str] = set()
        twins: list[dict[str, Any]] = []
        for row in rows:
            key = row["dedupe_key"]
            if key is None:
                continue
            if key in known:
                _mark_duplicate(row, known[key])
            elif key in seen:  # the same mail twice in one chunk
                twins.append({"key": key, **row})
                _mark_duplicate(row, None)
            else:
                seen.add(key)
        if rows:
            session.execute(insert(table), rows)
        for twin in twins:  # point at the first copy now that it has an id
            original = _existing(session, [twin["key"]])[twin["key"]]
            session.execute(update(table).where(table.c.mailbox == name,
                                                table.c.uidvalidity == uidvalidity,
                                                table.c.uid == twin["uid"])
                            .values(duplicate_of=original,
                                    reason=f"duplicate of inbound {original}"))
        _advance(session, name, max(chunk))
        session.commit()
    dups = sum(1 for r in rows if r["status"] == "duplicate")
    big = sum(1 for r in rows if r["reason"] == "too-large")
    return PollResult(name, len(mails), len(rows) - dups - big, dups, big)


def _mark_duplicate(row: dict[str, Any], original: int | None) -> None:
    row.update(status="duplicate", raw=None, dedupe_key=None, duplicate_of=original,
               reason=f"duplicate of inbound {original}" if original else "duplicate")


def _row(name: str, uidvalidity: int, mail: FetchedMail) -> dict[str, Any]:
    base = {"mailbox": name, "uidvalidity": uidvalidity, "uid": mail.uid, "raw": mail.raw,
            "status": "received", "reason": None, "detail": None, "duplicate_of": None,
            "imap_done": False, "ticket_id": None, "attempts": 0, "received_at": utcnow(),
            "processed_at": None}
    if mail.raw is None:
        return {**base, "message_id": "", "content_hash": "", "dedupe_key": None,
                "size": mail.size, "status": "quarantined", "reason": "too-large",
                "imap_done": True, "detail": f"{mail.size} bytes exceeds "
                "storage.max_message_bytes; left on the IMAP server"}
    ident = identify(mail.raw)
    return {**base, "message_id": ident.message_id, "content_hash": ident.content_hash,
            "dedupe_key": ident.dedupe_key, "size": len(mail.raw)}


def _existing(session: Session, keys: list[str]) -> dict[str, int | None]:
    if not keys:
        return {}
    stmt = select(Inbound.dedupe_key, Inbound.id).where(col(Inbound.dedupe_key).in_(keys))
    return {k: i for k, i in session.exec(stmt) if k}


def _advance(session: Session, name: str, uid: int) -> None:
    state = session.get(MailboxState, name)
    assert state is not None
    state.last_uid, state.updated_at = max(state.last_uid, uid), utcnow()
    session.add(state)


def _mark_imap_done(engine: Engine, name: str, uidvalidity: int, uids: Sequence[int]) -> None:
    with Session(engine) as session:
        session.execute(update(Inbound).where(
            col(Inbound.mailbox) == name, col(Inbound.uidvalidity) == uidvalidity,
            col(Inbound.uid).in_(list(uids)),
        ).values(imap_done=True))
        session.commit()
