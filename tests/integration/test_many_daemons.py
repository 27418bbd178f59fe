"""Three daemons on one PostgreSQL, one Dovecot, one SMTP sink; one of them is SIGKILLed.

Asserts: every mail is stored once and opens exactly one ticket, no ticket gets two
acknowledgements, and no reminder or escalation is sent twice. A row the killed daemon had
claimed for sending becomes ``uncertain`` (at most once: never resent automatically), so
"exactly one acknowledgement" holds for every ticket except those, which got at most one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from mailer import db
from mailer.models import Inbound, Outbox, Ticket
from tests.integration.conftest import PASSWORD_ENV
from tests.smtp_sink import SmtpSink

MAILS = 2000
DEADLINE = 240.0


def _wait(predicate, what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)  # polling another process's progress, not a timing assumption


def _seed(dovecot, user) -> None:
    with dovecot.connect(user.address) as client:
        for i in range(MAILS):
            client.append("INBOX", (
                f"From: Customer {i} <c{i}@example.com>\r\nTo: support@exchange.example\r\n"
                f"Subject: Withdrawal {i} pending\r\nMessage-ID: <m{i}@example.com>\r\n"
                f"\r\nMy withdrawal number {i} of 100 USDT is still pending.\r\n").encode())


def _config(tmp: Path, url: str, user, sink) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[database]
url = "{url}"
[[mailboxes]]
name = "support"
host = "{user.host}"
port = {user.port}
security = "none"
username = "{user.address}"
password_env = "{PASSWORD_ENV}"
max_per_run = 200
[smtp]
host = "127.0.0.1"
port = {sink.port}
[storage]
attachments_dir = "{tmp / 'att'}"
[scheduler]
poll_interval_seconds = 1
send_interval_seconds = 1
sla_interval_seconds = 1
[agents]
queue_address = "queue@exchange.example"
[outbound]
auto_per_recipient_per_hour = 100000
[sla]
reminders = [50]
by_urgency = {{}}
[sla.policies.standard]
first_response_hours = 0.005
[logging]
level = "WARNING"
""")
    return path


def test_three_daemons_one_killed(tmp_path, pg_url, dovecot, imap_user):
    db.upgrade(pg_url)
    _seed(dovecot, imap_user)
    engine = db.make_engine(pg_url)

    def count(model, *where):
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(model).where(*where)).one()

    with SmtpSink() as sink:
        config = _config(tmp_path, pg_url, imap_user, sink)
        env = {**os.environ, PASSWORD_ENV: imap_user.password}
        daemons = [subprocess.Popen([sys.executable, "-m", "mailer", "run", "--config",
                                     str(config)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(3)]
        try:
            _wait(lambda: count(Inbound) >= MAILS // 4, "a quarter of the mail")
            daemons[0].send_signal(signal.SIGKILL)
            daemons[0].wait(timeout=10)
            _wait(lambda: count(Inbound, Inbound.status == "processed") == MAILS,
                  "every mail processed")
            _wait(lambda: count(Outbox, Outbox.kind == "sla_reminder") == MAILS,
                  "a reminder for every ticket")
            _wait(lambda: count(Outbox, Outbox.status.in_(("pending", "claimed", "sending")))
                  == 0
                  or _only_stale(engine), "the outbox drained")
        finally:
            for proc in daemons[1:]:
                proc.send_signal(signal.SIGTERM)
            for proc in daemons:
                proc.wait(timeout=60)
        received = list(sink.messages)
    _check(engine, received)
    engine.dispose()


def _only_stale(engine) -> bool:
    """Only rows the killed daemon claimed are left (they wait for their lease)."""
    with Session(engine) as session:
        left = session.exec(select(Outbox.status).where(
            Outbox.status.in_(("pending", "claimed", "sending")))).all()
    return bool(left) and set(left) <= {"sending", "claimed"}


def _check(engine, received) -> None:
    with Session(engine) as session:
        inbound = session.exec(select(Inbound)).all()
        assert len(inbound) == MAILS
        assert len({(r.uidvalidity, r.uid) for r in inbound}) == MAILS
        assert len(session.exec(select(Ticket)).all()) == MAILS
        acks = session.exec(select(Outbox).where(Outbox.kind == "ack")).all()
    assert Counter(a.ticket_id for a in acks).most_common(1)[0][1] == 1
    sent_ids = [m.message["Message-ID"].strip() for m in received]
    assert len(sent_ids) == len(set(sent_ids)), "a mail was sent twice"
    to_customers = Counter(m.message["Subject"].split("[#")[-1] for m in received
                           if m.message["Auto-Submitted"] and "queue@exchange.example"
                           not in m.rcpt_tos)
    assert max(to_customers.values()) == 1, "a ticket got two acknowledgements"
    not_sent = {a.status for a in acks} - {"sent"}
    assert not_sent <= {"uncertain", "sending", "claimed"}, not_sent
    # Every ticket's ack was received, or is uncertain/sending because its daemon was
    # killed around DATA (it may or may not have been delivered: never resent, so never twice).
    acked = {key.rstrip("]") for key in to_customers}
    unsent = {f"T-{a.ticket_id:06d}" for a in acks if a.status != "sent"}
    assert acked | unsent == {f"T-{a.ticket_id:06d}" for a in acks}
    assert all(f"T-{a.ticket_id:06d}" in acked for a in acks if a.status == "sent")
    reminders = [m for m in received if "SLA reminder" in m.message["Subject"]]
    keys = Counter(m.message["Subject"] for m in reminders)
    assert reminders and max(keys.values()) == 1, "a reminder was sent twice"
