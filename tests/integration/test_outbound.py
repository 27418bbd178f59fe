"""Outbound mail end to end: FakeSource in, the pipeline, the outbox, a real SMTP sink out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from mailer.app import build_app, ingest_once, send_once
from mailer.config import parse_config
from mailer.corpus import load_labels, load_tokens, rewrite
from mailer.models import Inbound, Message, Outbox, Ticket, TicketEvent, utcnow
from mailer.smtp import SmtpSender
from tests.fakes import FakeSource
from tests.smtp_sink import SmtpSink

AGENT = "alice.agent@exchange.example"


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


class Desk:
    """The daemon wired to a fake mailbox and a real SMTP sink, driven one tick at a time."""

    def __init__(self, tmp_path, url, sink, **outbound):
        self.source, self.sink = FakeSource(), sink
        self.config = parse_config({
            "database": {"url": url},
            "mailboxes": [{"name": "fake", "host": "127.0.0.1", "port": 143,
                           "security": "none", "username": "u", "password_env": "UNUSED"}],
            "storage": {"attachments_dir": str(tmp_path / "att")},
            "smtp": {"host": sink.host, "port": sink.port},
            "agents": {"domains": ["exchange.example"],
                       "queue_address": "queue@exchange.example"},
            "outbound": outbound})
        self.app = build_app(self.config, source_factory=lambda box: self.source,
                             sender=SmtpSender(self.config.smtp, None, timeout=5))
        self.now = utcnow()

    def receive(self, raw: bytes):
        uid = self.source.deliver(raw)
        ingest_once(self.app)
        with Session(self.app.engine) as session:
            return session.exec(select(Inbound).where(Inbound.uid == uid)).one()

    def send(self, minutes: float = 0):
        # Simulated time, never behind the wall clock the rows were queued with.
        self.now = max(self.now, utcnow()) + timedelta(minutes=minutes)
        return send_once(self.app, self.now)

    def outbox(self, **where):
        with Session(self.app.engine) as session:
            stmt = select(Outbox)
            for key, value in where.items():
                stmt = stmt.where(getattr(Outbox, key) == value)
            return session.exec(stmt.order_by(Outbox.id)).all()

    def sent_to(self, address):
        return [m for m in self.sink.messages if address in m.rcpt_tos]


@pytest.fixture
def desk(tmp_path, store_url, sink):
    d = Desk(tmp_path, store_url, sink)
    yield d
    d.app.engine.dispose()


def mail(sender="carol@example.com", subject="Withdrawal stuck", body="My withdrawal of "
         "500 USDT is pending.", headers="", msgid=None):
    msgid = msgid or f"<{abs(hash((sender, subject, body, headers)))}@example.com>"
    return (f"From: Carol <{sender}>\r\nTo: support@exchange.example\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


def test_new_ticket_gets_one_ack_and_agents_a_notification(desk):
    desk.receive(mail())
    desk.send()
    desk.send(minutes=5)  # a second tick sends nothing again
    (ack,) = desk.sent_to("carol@example.com")
    assert "[#T-000001]" in ack.message["Subject"]
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert desk.app.signer.verify(ack.message["Message-ID"]).number == "T-000001"
    assert len(desk.sent_to("queue@exchange.example")) == 1
    with Session(desk.app.engine) as session:
        kinds = [m.kind for m in session.exec(select(Message).order_by(Message.id))]
    assert kinds == ["customer", "ack", "notification"]


@pytest.mark.parametrize("headers", [
    "Auto-Submitted: auto-replied\r\n", "Precedence: bulk\r\n", "Precedence: junk\r\n",
    "X-Auto-Response-Suppress: All\r\n", "X-Autoreply: yes\r\n",
    "Return-Path: <>\r\n", "X-Mailer-Loop: exchange.example\r\n",
])
def test_machine_mail_gets_no_ack(desk, headers):
    desk.receive(mail(headers=headers))
    desk.send()
    assert desk.sent_to("carol@example.com") == []


@pytest.mark.parametrize("sender", ["noreply@example.com", "no-reply@example.com",
                                    "postmaster@example.com", "mailer-daemon@example.com"])
def test_system_senders_get_no_ack(desk, sender):
    desk.receive(mail(sender=sender))
    desk.send()
    assert desk.sent_to(sender) == []


def test_temporary_failure_retries_with_backoff_permanent_is_recorded(desk):
    desk.sink.fail_next(451, count=1)
    desk.receive(mail())
    desk.send()
    (ack,) = desk.outbox(kind="ack")
    assert ack.status == "pending" and ack.attempts == 1
    assert desk.send(minutes=0.5) == {}  # not due yet
    desk.send(minutes=2)
    (ack,) = desk.outbox(kind="ack")
    assert ack.status == "sent" and len(desk.sent_to("carol@example.com")) == 1
    desk.sink.fail_next(550, count=1)
    desk.receive(mail(sender="dave@example.com"))
    desk.send(minutes=1)
    (failed,) = desk.outbox(kind="ack", to_addr="dave@example.com")
    assert failed.status == "failed"
    with Session(desk.app.engine) as session:
        kinds = [e.kind for e in session.exec(select(TicketEvent))]
    assert "delivery_failed" in kinds


def test_ten_minute_outage_loses_and_duplicates_nothing(desk):
    for i in range(5):
        desk.receive(mail(sender=f"user{i}@example.com"))
    desk.sink.refuse_connections(True)
    for _ in range(10):
        desk.send(minutes=1)
    assert desk.sink.messages == []
    assert all(r.status == "pending" for r in desk.outbox())
    desk.sink.refuse_connections(False)
    desk.send(minutes=60)
    for i in range(5):
        assert len(desk.sent_to(f"user{i}@example.com")) == 1
    assert all(r.status == "sent" for r in desk.outbox())


def test_killed_between_data_and_result_is_never_resent(desk):
    from mailer.outbound.outbox import claim_due, mark_sending

    desk.receive(mail())
    claimed = claim_due(desk.app.engine, utcnow(), 50)
    mark_sending(desk.app.engine, claimed[0].id, utcnow())  # then the daemon "dies"
    desk.send(minutes=10)  # past the lease
    statuses = {r.id: r.status for r in desk.outbox()}
    assert statuses[claimed[0].id] == "uncertain"
    assert all(m.message["Message-ID"] != claimed[0].message_id for m in desk.sink.messages)


def test_killed_after_claiming_but_before_sending_sends_later_once(desk):
    from mailer.outbound.outbox import claim_due

    desk.receive(mail())
    assert claim_due(desk.app.engine, utcnow(), 50)  # then the daemon "dies"
    desk.send(minutes=10)  # past the lease: back to pending, sent
    desk.send(minutes=1)
    assert {r.status for r in desk.outbox()} == {"sent"}
    assert len(desk.sent_to("carol@example.com")) == 1


def test_two_autoresponders_stop_at_the_rate_limit(desk):
    # A naive bot that answers everything with a new mail and no auto headers.
    for i in range(20):
        desk.receive(mail(sender="bot@robots.example", subject=f"Thanks for writing {i}"))
        desk.send(minutes=1)
    acks = desk.sent_to("bot@robots.example")
    assert len(acks) == desk.config.outbound.auto_per_recipient_per_hour


def test_agent_reply_by_mail_is_relayed_and_threaded(desk):
    desk.receive(mail(msgid="<first@example.com>"))
    desk.send()
    (note,) = desk.sent_to("queue@exchange.example")
    notify_id = note.message["Message-ID"]
    desk.receive(mail(sender=AGENT, subject="Re: " + note.message["Subject"],
                      headers=f"In-Reply-To: {notify_id}\r\nReferences: {notify_id}\r\n",
                      body="Hello Carol, the withdrawal is released.\r\n\r\n> ticket text"))
    desk.send()
    ack, relayed = desk.sent_to("carol@example.com")
    assert "the withdrawal is released" in relayed.message.get_body(("plain",)).get_content()
    assert "ticket text" not in relayed.message.get_body(("plain",)).get_content()
    assert "Auto-Submitted" not in relayed.message
    assert relayed.message["In-Reply-To"] == ack.message["Message-ID"]
    assert "<first@example.com>" in relayed.message["References"]
    # The customer answers the relayed reply: same ticket.
    row = desk.receive(mail(subject="Re: thanks", msgid="<second@example.com>",
                            headers=f"In-Reply-To: {relayed.message['Message-ID']}\r\n"))
    with Session(desk.app.engine) as session:
        assert row.ticket_id == 1 and len(session.exec(select(Ticket)).all()) == 1
        assert session.get(Ticket, 1).first_response_at is not None


def test_note_stays_internal(desk):
    desk.receive(mail())
    desk.send()
    (note,) = desk.sent_to("queue@exchange.example")
    desk.receive(mail(sender=AGENT, subject="Re: x", body="#note check the KYC first",
                      headers=f"In-Reply-To: {note.message['Message-ID']}\r\n"))
    desk.send()
    assert len(desk.sent_to("carol@example.com")) == 1  # the ack only


def test_stranger_replying_to_the_notification_is_not_relayed(desk):
    desk.receive(mail())
    desk.send()
    (note,) = desk.sent_to("queue@exchange.example")
    desk.receive(mail(sender="mallory@evil.example", subject="Re: x", body="send me funds",
                      headers=f"In-Reply-To: {note.message['Message-ID']}\r\n"))
    desk.send()
    assert all("send me funds" not in m.message.get_body(("plain",)).get_content()
               for m in desk.sent_to("carol@example.com"))


def test_crlf_in_subject_injects_no_header(desk):
    desk.receive(mail(subject="=?utf-8?Q?help=0D=0ABcc:_victim@example.com?="))
    desk.receive(mail(sender="erin@example.com",
                      subject="=?utf-8?Q?line=E2=80=A8separator_and_tab=09here?="))
    desk.send()
    for msg in desk.sink.messages:
        assert "victim@example.com" not in msg.rcpt_tos
        assert "\n" not in msg.message["Subject"] and "Bcc" not in msg.message


def test_anti_phishing_code_appears_in_every_mail(desk):
    from mailer.cli import main

    desk.receive(mail(sender="frank@example.com"))
    with Session(desk.app.engine) as session:
        from mailer.models import Customer
        session.add(Customer(address="frank@example.com", anti_phishing_code="BLUE-OWL-42"))
        session.commit()
    desk.send()
    (ack,) = desk.sent_to("frank@example.com")
    assert "BLUE-OWL-42" in ack.message.get_body(("plain",)).get_content()
    assert "BLUE-OWL-42" in ack.message.get_body(("html",)).get_content()
    assert main is not None


def test_permanent_bounce_suppresses_the_address(desk):
    bounce = (b"From: MAILER-DAEMON@relay.example\r\nTo: support@exchange.example\r\n"
              b"Subject: Undelivered\r\nReturn-Path: <>\r\nMessage-ID: <b1@relay.example>\r\n"
              b"X-Failed-Recipients: gone@example.com\r\n\r\nfailed\r\n")
    desk.receive(bounce)
    desk.receive(mail(sender="gone@example.com"))
    desk.send()
    assert desk.sent_to("gone@example.com") == []


def test_each_human_corpus_mail_gets_one_ack_in_its_language(desk, corpus_dir):
    tokens, by_file = load_tokens(corpus_dir), {}

    def number_for(token):
        with Session(desk.app.engine) as session:
            row = session.get(Inbound, by_file.get(tokens.get(token), -1))
            ticket = session.get(Ticket, row.ticket_id) if row and row.ticket_id else None
            return ticket.number if ticket else None

    for label in load_labels(corpus_dir):
        raw = rewrite((corpus_dir / label.file).read_bytes(), number_for, desk.app.signer.make)
        by_file[label.file] = desk.receive(raw).id
        desk.send(minutes=1)
    with Session(desk.app.engine) as session:
        for label in load_labels(corpus_dir):
            row = session.get(Inbound, by_file[label.file])
            acks = session.exec(select(Outbox).where(
                Outbox.kind == "ack", Outbox.ticket_id == row.ticket_id)).all() \
                if row.ticket_id else []
            if label.expect == "new_ticket":
                assert len(acks) == 1 and acks[0].status == "sent", label.file
                assert acks[0].language == label.language, label.file
    ack_count = len([m for m in desk.sink.messages if m.message["Auto-Submitted"]
                     and "queue@exchange.example" not in m.rcpt_tos])
    assert ack_count == sum(1 for lb in load_labels(corpus_dir) if lb.expect == "new_ticket")
