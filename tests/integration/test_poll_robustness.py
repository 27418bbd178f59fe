"""Polling against a real Dovecot: crashes, dropped connections, UIDVALIDITY, big mail."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, func, select

from mailer.app import ingest_once, poll_once
from mailer.ingest.imap import ImapSource
from mailer.models import Inbound, Ticket
from tests.servers import DropProxy

LATER = 10**9  # a monotonic "now" past any backoff


def mail(i: int, body_size: int = 200, sender: str | None = None) -> bytes:
    sender = sender or f"customer{i}@example.com"  # distinct: under the flood limit
    body = (f"Deposit {i} has not arrived. " * (body_size // 28 + 1))[:body_size]
    return (f"From: Alice <{sender}>\r\nTo: support@exchange.example\r\n"
            f"Subject: Deposit missing #{i}\r\nMessage-ID: <m{i}.{time.time_ns()}@example.com>\r\n"
            f"Date: Mon, 20 May 2024 10:00:00 +0000\r\n\r\n{body}\r\n").encode()


def count(app, model, *where) -> int:
    with Session(app.engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


class Killed(BaseException):
    """Stands for SIGKILL at the seam: nothing after it runs."""


class DiesBeforeFlagging(ImapSource):
    def mark_done(self, uids):
        raise Killed


def test_kill_between_commit_and_flag_creates_no_duplicate(make_app, store_url, dovecot,
                                                           imap_user, monkeypatch):
    for i in range(5):
        dovecot.append(imap_user.address, "INBOX", mail(i))
    app = make_app(store_url)
    app.source_factory = lambda box: DiesBeforeFlagging(box, imap_user.password)
    with pytest.raises(Killed):
        poll_once(app)
    assert count(app, Inbound) == 5
    assert not any(b"\\Seen" in f for f in dovecot.flags(imap_user.address).values())

    restarted = make_app(store_url)
    ingest_once(restarted)
    assert count(restarted, Inbound) == 5
    assert count(restarted, Ticket) == 5
    assert all(b"\\Seen" in f for f in dovecot.flags(imap_user.address).values())


def test_dropped_connection_mid_poll_is_survived(make_app, store_url, dovecot, imap_user):
    for i in range(150):
        dovecot.append(imap_user.address, "INBOX", mail(i, body_size=2000))
    with DropProxy(dovecot.host, dovecot.port) as proxy:
        app = make_app(store_url, host=proxy.host, port=proxy.port)
        proxy.drop_after_bytes(100 * 2000 + 60_000)  # inside the second fetch chunk
        results, _ = ingest_once(app)
        assert proxy.drops == 1 and results == [] and "support" in app.poll_errors
        assert count(app, Inbound) == 100, "the first chunk was committed before the drop"
        ingest_once(app)  # still backing off: nothing happens
        assert count(app, Inbound) == 100
        ingest_once(app, now=time.monotonic() + LATER)
    assert not app.poll_errors
    assert count(app, Inbound) == 150
    assert count(app, Ticket) == 150


def test_uidvalidity_change_rescans_without_duplicates(make_app, store_url, dovecot, imap_user):
    mails = [mail(i) for i in range(4)]
    dovecot.create_folder(imap_user.address, "Support")
    for raw in mails:
        dovecot.append(imap_user.address, "Support", raw)
    app = make_app(store_url, folder="Support")
    ingest_once(app)
    with dovecot.connect(imap_user.address) as client:
        before = client.select_folder("Support")[b"UIDVALIDITY"]
        client.unselect_folder()
        client.delete_folder("Support")
        client.create_folder("Support")
        after = client.select_folder("Support")[b"UIDVALIDITY"]
    assert before != after
    for raw in [*mails, mail(99)]:
        dovecot.append(imap_user.address, "Support", raw)
    ingest_once(app)
    assert count(app, Ticket) == 5
    assert count(app, Inbound, Inbound.status == "duplicate") == 4


def test_processed_folder_gets_the_mail_after_commit(make_app, store_url, dovecot, imap_user):
    for i in range(3):
        dovecot.append(imap_user.address, "INBOX", mail(i))
    app = make_app(store_url, processed_folder="Done")
    ingest_once(app)
    assert dovecot.uids(imap_user.address, "INBOX") == []
    assert len(dovecot.uids(imap_user.address, "Done")) == 3
    assert count(app, Ticket) == 3


def test_oversized_mail_is_held_and_left_on_the_server(make_app, store_url, dovecot,
                                                       imap_user):
    dovecot.append(imap_user.address, "INBOX", mail(1, body_size=50_000))
    dovecot.append(imap_user.address, "INBOX", mail(2))
    app = make_app(store_url, storage={"max_message_bytes": 10_000})
    ingest_once(app)
    with Session(app.engine) as session:
        big = session.exec(select(Inbound).where(Inbound.reason == "too-large")).one()
    assert big.raw is None and big.status == "quarantined"
    assert count(app, Ticket) == 1
    flags = dovecot.flags(imap_user.address)
    assert b"\\Seen" not in flags[big.uid], "left untouched for a human"


def test_each_run_respects_the_cap_oldest_first(make_app, store_url, dovecot, imap_user):
    for i in range(7):
        dovecot.append(imap_user.address, "INBOX", mail(i))
    app = make_app(store_url, max_per_run=3)
    results, _ = ingest_once(app)
    assert results[0].fetched == 3 and results[0].more
    with Session(app.engine) as session:
        uids = session.exec(select(Inbound.uid).order_by(Inbound.id)).all()
    assert uids == sorted(dovecot.uids(imap_user.address))[:3]
    ingest_once(app)
    ingest_once(app)
    assert count(app, Ticket) == 7


def test_wrong_password_is_reported_not_raised(make_app, store_url, imap_user, monkeypatch):
    app = make_app(store_url)
    monkeypatch.setenv("MAILER_TEST_IMAP_PASSWORD", "wrong")
    app.source_factory = lambda box: ImapSource(box, "wrong")
    results, _ = ingest_once(app)
    assert results == [] and "login" in app.poll_errors["support"]
    assert "wrong" not in app.poll_errors["support"]


def test_unreachable_server_backs_off(make_app, store_url):
    app = make_app(store_url, port=1)
    ingest_once(app, now=0.0)
    first = app.backoff["support"]
    ingest_once(app, now=1.0)  # inside the backoff window: not retried
    assert app.backoff["support"] == first
    ingest_once(app, now=first[1] + 0.1)
    assert app.backoff["support"][0] == 2
    assert app.backoff["support"][1] - (first[1] + 0.1) == pytest.approx(10.0)
