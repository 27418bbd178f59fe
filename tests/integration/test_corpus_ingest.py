"""Every mail of the dev corpus, delivered in order to a real Dovecot, ends as its label says."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailer.app import App, ingest_once
from mailer.corpus import load_labels, load_tokens, rewrite
from mailer.models import Inbound, Message, Ticket
from tests.servers import Dovecot, ImapUser

SCRIPTS = {
    "zh": r"[\u4e00-\u9fff]", "zh-Hant": r"[\u4e00-\u9fff]",
    "ja": r"[\u3040-\u30ff\u4e00-\u9fff]", "ko": r"[\uac00-\ud7af]",
    "ru": r"[\u0400-\u04ff]", "vi": r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]",
}


def deliver_corpus(app: App, dovecot: Dovecot, user: ImapUser, corpus: Path) -> dict[str, int]:
    """Deliver each mail in order (rewriting replies), ingest after each; file -> inbound id."""
    tokens = load_tokens(corpus)
    by_file: dict[str, int] = {}

    def number_for(token: str) -> str | None:
        root = tokens.get(token)
        inbound_id = by_file.get(root) if root else None
        with Session(app.engine) as session:
            row = session.get(Inbound, inbound_id) if inbound_id else None
            ticket = session.get(Ticket, row.ticket_id) if row and row.ticket_id else None
            return ticket.number if ticket else None

    for label in load_labels(corpus):
        raw = rewrite((corpus / label.file).read_bytes(), number_for,
                      lambda kind, number: app.signer.make(kind, number))
        uid = dovecot.append(user.address, "INBOX", raw)
        ingest_once(app)
        with Session(app.engine) as session:
            row = session.exec(select(Inbound).where(Inbound.uid == uid)).one()
            by_file[label.file] = row.id
    return by_file


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_corpus_ends_as_labelled(backend, request, make_app, dovecot, imap_user, corpus_dir):
    url = request.getfixturevalue("sqlite_store" if backend == "sqlite" else "migrated_pg_url")
    app = make_app(url)
    by_file = deliver_corpus(app, dovecot, imap_user, corpus_dir)
    labels = {label.file: label for label in load_labels(corpus_dir)}
    with Session(app.engine) as session:
        rows = {f: session.get(Inbound, i) for f, i in by_file.items()}
        first_inbound = _first_inbound_per_ticket(session)
        for name, label in labels.items():
            _check_outcome(session, label, rows[name], rows, first_inbound)
        tickets = session.exec(select(Ticket)).all()
    assert len(tickets) == sum(1 for lb in labels.values() if lb.expect == "new_ticket")


def _first_inbound_per_ticket(session: Session) -> dict[int, int | None]:
    out: dict[int, int | None] = {}
    for m in session.exec(select(Message).order_by(col(Message.id))):
        out.setdefault(m.ticket_id, m.inbound_id)
    return out


def _check_outcome(session, label, row, rows, first_inbound):
    where = f"{label.file} ({label.notes})"
    if label.expect == "new_ticket":
        assert row.status == "processed", where
        assert first_inbound[row.ticket_id] == row.id, f"{where}: did not open its ticket"
    elif label.expect in ("append_to_ticket", "no_autoreply_but_ticket"):
        parent = rows[label.thread_parent]
        assert row.status == "processed", where
        assert row.ticket_id == parent.ticket_id, f"{where}: not on the parent's ticket"
        msg = session.exec(select(Message).where(Message.inbound_id == row.id)).one()
        want = "auto_reply" if label.expect == "no_autoreply_but_ticket" else "customer"
        assert msg.kind == want, where
    elif label.expect == "no_autoreply_and_no_ticket":
        assert row.status in ("discarded", "duplicate"), where
        assert row.ticket_id is None, where
    elif label.expect == "quarantine":
        assert row.status == "quarantined", where
        assert row.raw, f"{where}: quarantine must keep the raw bytes"
    else:
        pytest.fail(f"unknown expectation {label.expect}")


def test_corpus_decodes_without_mojibake(make_app, store_url, dovecot, imap_user, corpus_dir):
    app = make_app(store_url)
    by_file = deliver_corpus(app, dovecot, imap_user, corpus_dir)
    with Session(app.engine) as session:
        for label in load_labels(corpus_dir):
            msg = session.exec(select(Message).where(
                Message.inbound_id == by_file[label.file])).first()
            if msg is None:
                continue
            _assert_clean(label, msg.subject, msg.text)


def _assert_clean(label, subject: str, text: str) -> None:
    where = f"{label.file} ({label.notes})"
    for value in (subject, text):
        assert "\ufffd" not in value, f"{where}: replacement character"
        assert "\x1b" not in value, f"{where}: raw ISO-2022 escape"
        assert unicodedata.is_normalized("NFC", value), f"{where}: not NFC"
    assert "=?" not in subject, f"{where}: undecoded encoded-word in {subject!r}"
    script = SCRIPTS.get(label.language)
    if script and (subject + text).strip():
        assert re.search(script, subject + text.lower()), f"{where}: no {label.language} text"


def test_repoll_creates_nothing(make_app, store_url, dovecot, imap_user, corpus_dir):
    app = make_app(store_url)
    deliver_corpus(app, dovecot, imap_user, corpus_dir)
    with Session(app.engine) as session:
        before = (len(session.exec(select(Inbound)).all()), len(session.exec(select(Ticket)).all()))
    results, counts = ingest_once(app)
    assert [r.fetched for r in results] == [0]
    assert not counts
    with Session(app.engine) as session:
        after = (len(session.exec(select(Inbound)).all()), len(session.exec(select(Ticket)).all()))
    assert after == before
    flags = dovecot.flags(imap_user.address)
    assert flags and all(b"\\Seen" in f for f in flags.values()), "every mail flagged"
