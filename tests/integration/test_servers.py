"""The test servers themselves: Dovecot, DropProxy and the database fixtures work as promised."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlalchemy import create_engine, text

from tests.servers import (
    IMAP_TIMEOUT,
    Dovecot,
    DropProxy,
    ImapUser,
    pg_database_exists,
    port_open,
    temporary_pg_database,
)

DROPPED = (IMAPClientAbortError, OSError)


def make_mail(subject: str, body: str = "hello\n") -> bytes:
    """Build a small RFC 5322 message with CRLF line ends, as IMAP APPEND expects."""
    msg = EmailMessage()
    msg["From"] = "customer@example.com"
    msg["To"] = "support@exchange.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@contextlib.contextmanager
def logged_in(
    user: ImapUser, host: str | None = None, port: int | None = None
) -> Iterator[IMAPClient]:
    """Yield an IMAP client for `user` (optionally via another host/port); always close it."""
    client = IMAPClient(host or user.host, port or user.port, ssl=False, timeout=IMAP_TIMEOUT)
    try:
        client.login(user.address, user.password)
        yield client
    finally:
        with contextlib.suppress(IMAPClientError, OSError):
            client.logout()
        with contextlib.suppress(IMAPClientError, OSError):
            client.shutdown()


def test_append_uids_and_flags_round_trip(dovecot: Dovecot, imap_user: ImapUser) -> None:
    first = dovecot.append(imap_user.address, "INBOX", make_mail("first"))
    second = dovecot.append(
        imap_user.address, "INBOX", make_mail("second"), flags=[b"\\Seen", b"\\Flagged"]
    )

    assert dovecot.uids(imap_user.address, "INBOX") == [first, second]
    assert dovecot.flags(imap_user.address, "INBOX") == {
        first: (),
        second: (b"\\Flagged", b"\\Seen"),
    }
    with logged_in(imap_user) as client:
        client.select_folder("INBOX")
        fetched = client.fetch([first], ["BODY.PEEK[]"])
    assert fetched[first][b"BODY[]"] == make_mail("first")
    assert dovecot.flags(imap_user.address, "INBOX")[first] == ()  # PEEK set no \Seen


def test_folders_and_clear(dovecot: Dovecot, imap_user: ImapUser) -> None:
    dovecot.create_folder(imap_user.address, "Processed")
    dovecot.create_folder(imap_user.address, "Processed")  # idempotent
    dovecot.append(imap_user.address, "INBOX", make_mail("a"))
    dovecot.append(imap_user.address, "Processed", make_mail("b"))

    dovecot.clear(imap_user.address)

    assert dovecot.uids(imap_user.address, "INBOX") == []
    assert dovecot.uids(imap_user.address, "Processed") == []
    # UIDs are never reused after an expunge.
    assert dovecot.append(imap_user.address, "INBOX", make_mail("c")) == 2


def test_users_do_not_see_each_other(dovecot: Dovecot, imap_user: ImapUser) -> None:
    other = ImapUser(f"other-{imap_user.address}", "other-secret", dovecot.host, dovecot.port)
    dovecot.add_user(other.address, other.password)

    dovecot.append(imap_user.address, "INBOX", make_mail("mine"))

    assert dovecot.uids(other.address, "INBOX") == []
    with logged_in(other) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    wrong = ImapUser(imap_user.address, other.password, dovecot.host, dovecot.port)
    with pytest.raises(IMAPClientError), logged_in(wrong):
        pass


def test_kill_imap_sessions_drops_live_connection(dovecot: Dovecot, imap_user: ImapUser) -> None:
    with logged_in(imap_user) as client:
        client.select_folder("INBOX")

        assert dovecot.kill_imap_sessions() >= 1

        with pytest.raises(DROPPED):
            client.noop()
    with logged_in(imap_user) as client:  # the server itself is fine
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_drop_proxy_cuts_after_exactly_n_bytes_then_accepts_again(dovecot: Dovecot) -> None:
    with DropProxy(dovecot.host, dovecot.port) as proxy:
        proxy.drop_after_bytes(5)
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            received = b""
            while chunk := sock.recv(1024):
                received += chunk
        assert received == b"* OK "
        assert proxy.drops == 1

        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            greeting = sock.recv(1024)
        assert greeting.startswith(b"* OK ") and greeting.endswith(b"\r\n")
        assert proxy.drops == 1


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_drop_proxy_drops_imap_connection_mid_fetch(
    dovecot: Dovecot, imap_user: ImapUser, reset: bool
) -> None:
    big = make_mail("big", ("y" * 76 + "\n") * 3000)  # ~230 KB, many TCP segments
    uid = dovecot.append(imap_user.address, "INBOX", big)
    with DropProxy(dovecot.host, dovecot.port) as proxy:
        with logged_in(imap_user, proxy.host, proxy.port) as client:
            client.select_folder("INBOX")
            proxy.drop_after_bytes(50_000, reset=reset)
            with pytest.raises(DROPPED):
                client.fetch([uid], ["BODY.PEEK[]"])
            with pytest.raises(DROPPED):
                client.noop()
        assert proxy.drops == 1

        with logged_in(imap_user, proxy.host, proxy.port) as client:  # disarmed: whole message
            client.select_folder("INBOX")
            assert client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == big
    assert dovecot.flags(imap_user.address)[uid] == ()


def test_second_instance_runs_alongside_and_restart_keeps_mail(
    dovecot: Dovecot, imap_user: ImapUser, tmp_path: Path
) -> None:
    with Dovecot(tmp_path / "second") as second:
        assert second.port != dovecot.port
        second.add_user("archive@exchange.example", "archive-secret")
        uid = second.append("archive@exchange.example", "INBOX", make_mail("kept"), [b"\\Seen"])
        port = second.port

        second.restart()

        assert second.port == port
        assert second.flags("archive@exchange.example") == {uid: (b"\\Seen",)}
        master = second.master_pid()
        assert master is not None
    assert not port_open(second.host, port)
    assert not Path(f"/proc/{master}").exists()
    assert dovecot.uids(imap_user.address) == []  # the session server was not disturbed


def test_pg_url_is_a_fresh_usable_database(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
            assert conn.scalar(text("SELECT current_database()")) == pg_url.rsplit("/", 1)[1]
            assert conn.scalar(text("SELECT count(*) FROM pg_stat_user_tables")) == 0
    finally:
        engine.dispose()


def test_temporary_pg_database_is_dropped_even_with_open_sessions(pg_url: str) -> None:
    # pg_url is requested for its skip-or-fail behaviour when PostgreSQL is down.
    with temporary_pg_database() as url:
        assert pg_database_exists(url)
        straggler = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert not pg_database_exists(url)
    finally:
        straggler.close()


def test_db_url_is_usable(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
    finally:
        engine.dispose()
    if db_url.startswith("sqlite"):
        assert db_url == f"sqlite:///{tmp_path / 'mailer.db'}"
