"""Threading rules, reopening and refusals, driven one tick at a time through a FakeSource."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from mailer.app import build_app, ingest_once
from mailer.config import parse_config
from mailer.models import Inbound, Message, Ticket, TicketEvent
from tests.fakes import FakeSource


@pytest.fixture
def app(tmp_path, store_url):
    url = store_url
    source = FakeSource()
    config = parse_config({
        "database": {"url": url},
        "mailboxes": [{"name": "fake", "host": "127.0.0.1", "port": 143, "security": "none",
                       "username": "u", "password_env": "UNUSED"}],
        "storage": {"attachments_dir": str(tmp_path / "att")},
    })
    real = build_app(config, source_factory=lambda box: source)
    yield Harness(real, source)
    real.engine.dispose()


class Harness:
    """The App plus its fake mailbox."""

    def __init__(self, app, fake):
        self.app, self.fake = app, fake
        self.engine, self.signer = app.engine, app.signer


def send(app, sender="alice@example.com", subject="Withdrawal stuck", body="Please help.",
         headers="", msgid=None):
    msgid = msgid or f"<{len(app.fake.mails)}.{sender}>"
    raw = (f"From: {sender}\r\nTo: support@exchange.example\r\nSubject: {subject}\r\n"
           f"Message-ID: {msgid}\r\n{headers}\r\n{body}\r\n").encode()
    uid = app.fake.deliver(raw)
    ingest_once(app.app)
    with Session(app.engine) as session:
        row = session.exec(select(Inbound).where(Inbound.uid == uid)).one()
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id else None
        return row, ticket


def set_status(app, ticket, status):
    with Session(app.engine) as session:
        row = session.get(Ticket, ticket.id)
        row.status = status
        session.add(row)
        session.commit()


def events(app, ticket):
    with Session(app.engine) as session:
        return [e.kind for e in session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))]


def test_reply_by_in_reply_to_of_a_stored_mail(app):
    _, first = send(app, msgid="<root@example.com>")
    _, second = send(app, subject="Re: Withdrawal stuck",
                     headers="In-Reply-To: <root@example.com>\r\n")
    assert second.id == first.id


def test_reply_to_our_signed_message_id(app):
    _, first = send(app)
    ours = app.signer.make("ack", first.number)
    _, second = send(app, subject="Re: hello", headers=f"References: <x@y> {ours}\r\n")
    assert second.id == first.id


def test_forged_signature_opens_a_new_ticket(app):
    _, first = send(app)
    forged = app.signer.make("ack", first.number).replace(first.number, "T-000999")
    _, second = send(app, headers=f"In-Reply-To: {forged}\r\n")
    assert second.id != first.id


def test_token_from_the_requester_threads(app):
    _, first = send(app)
    _, second = send(app, subject=f"Re: [#{first.number}] more info")
    assert second.id == first.id


def test_token_from_a_stranger_opens_a_new_ticket_and_is_recorded(app):
    _, first = send(app, sender="alice@example.com")
    _, second = send(app, sender="alice@examp1e.com", subject=f"Re: [#{first.number}] reset 2FA")
    assert second.id != first.id
    assert "thread_refused" in events(app, first)


def test_known_cc_may_reply_on_the_token(app):
    _, first = send(app, headers="Cc: bob@example.com\r\n")
    _, second = send(app, sender="Bob@Example.com", subject=f"Re: [#{first.number}]")
    assert second.id == first.id


def test_customer_reply_reopens_a_resolved_ticket(app):
    _, first = send(app)
    set_status(app, first, "resolved")
    _, again = send(app, subject=f"Re: [#{first.number}] still broken")
    assert again.id == first.id and again.status == "open"
    assert "reopened" in events(app, first)


def test_out_of_office_in_a_thread_is_recorded_but_never_reopens(app):
    _, first = send(app)
    set_status(app, first, "resolved")
    row, again = send(app, subject=f"Automatic reply: [#{first.number}]",
                      headers="Auto-Submitted: auto-replied\r\n")
    assert again.id == first.id and again.status == "resolved"
    with Session(app.engine) as session:
        msg = session.exec(select(Message).where(Message.inbound_id == row.id)).one()
    assert msg.kind == "auto_reply"


def test_out_of_office_outside_a_thread_opens_nothing(app):
    row, ticket = send(app, subject="Out of Office", headers="Auto-Submitted: auto-replied\r\n")
    assert ticket is None and row.status == "discarded"


@pytest.mark.parametrize("headers", [
    "List-Id: <news.example.com>\r\n", "Precedence: bulk\r\n",
    "List-Unsubscribe: <mailto:u@example.com>\r\n",
])
def test_list_mail_opens_nothing(app, headers):
    row, ticket = send(app, headers=headers)
    assert ticket is None and row.status == "discarded" and row.reason == "list"


def test_bounce_opens_nothing(app):
    row, ticket = send(app, sender="MAILER-DAEMON@relay.example.com", subject="Undelivered")
    assert ticket is None and row.reason == "bounce"


def test_header_injection_is_quarantined_with_raw_kept(app):
    row, ticket = send(app, subject="=?utf-8?Q?hi=0D=0ABcc:_x@evil.test?=")
    assert ticket is None and row.status == "quarantined" and row.reason == "header-injection"
    assert row.raw


def test_mail_from_our_own_address_opens_nothing(app):
    row, ticket = send(app, sender="support@exchange.example")
    assert ticket is None and row.reason == "from-support-address"


def test_closed_ticket_gets_a_new_ticket(app):
    _, first = send(app)
    set_status(app, first, "closed")
    _, again = send(app, subject=f"Re: [#{first.number}]")
    assert again.id != first.id


def test_same_message_id_different_content_is_two_mails(app):
    _, first = send(app, msgid="<reused@example.com>", body="first question")
    row, second = send(app, msgid="<reused@example.com>", body="another question")
    assert row.status == "processed" and second is not None and second.id != first.id


def test_the_same_mail_twice_in_one_poll_is_stored_once(app):
    raw = (b"From: dup@example.com\r\nTo: support@exchange.example\r\nSubject: twice\r\n"
           b"Message-ID: <twice@example.com>\r\n\r\nhello\r\n")
    app.fake.deliver(raw)
    app.fake.deliver(b"Received: from another relay\r\n" + raw)
    ingest_once(app.app)
    with Session(app.engine) as session:
        first, second = session.exec(select(Inbound).order_by(Inbound.id)).all()
        tickets = session.exec(select(Ticket)).all()
    assert first.status == "processed" and second.status == "duplicate"
    assert second.duplicate_of == first.id and second.raw is None
    assert len(tickets) == 1


def test_out_of_office_to_a_closed_ticket_opens_nothing(app):
    _, first = send(app)
    set_status(app, first, "closed")
    row, ticket = send(app, subject=f"Out of office: [#{first.number}]",
                       headers="Auto-Submitted: auto-replied\r\n")
    assert ticket is None and row.status == "discarded"


FAILED_AUTH = ("Authentication-Results: mx1.exchange.example; spf=fail smtp.mailfrom=x; "
               "dkim=none; dmarc=fail header.from=example.com\r\n")


def test_failed_auth_on_a_sensitive_request_is_never_threaded(app):
    _, first = send(app, msgid="<root-auth@example.com>")
    _, second = send(app, subject=f"Re: [#{first.number}] please reset 2FA",
                     body="Please reset 2FA and change my email.",
                     headers=FAILED_AUTH + "In-Reply-To: <root-auth@example.com>\r\n")
    assert second.id != first.id
    assert {"auth-failed", "sensitive-request"} <= set(second.tags)


def test_failed_auth_alone_still_threads_but_is_tagged(app):
    _, first = send(app, msgid="<root-auth2@example.com>")
    _, second = send(app, subject=f"Re: [#{first.number}] any news?", body="Any news?",
                     headers=FAILED_AUTH + "In-Reply-To: <root-auth2@example.com>\r\n")
    assert second.id == first.id and "auth-failed" in second.tags


def test_authserv_id_ignores_results_added_below_our_mx(tmp_path, store_url):
    from mailer.ingest.parse import parse_mail
    from mailer.ingest.trust import auth_failed, auth_results

    mail = parse_mail(b"Authentication-Results: evil.example; dmarc=fail\r\n"
                       b"Authentication-Results: mx1.exchange.example; dmarc=pass\r\n"
                       b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n")
    assert auth_failed(auth_results(mail, None))  # the topmost one, unconfigured
    assert not auth_failed(auth_results(mail, "mx1.exchange.example"))


def test_a_flooding_sender_is_grouped_and_not_acknowledged(app):
    for i in range(30):
        send(app, sender="flood@example.com", subject=f"spam {i}", body=f"buy {i}")
    _row, ticket = send(app, sender="flood@example.com", subject="spam 31", body="buy more")
    with Session(app.engine) as session:
        count = len(session.exec(select(Ticket)).all())
    assert count == 30 and ticket.id == 30 and "flood" in ticket.tags
    assert "flood_grouped" in events(app, ticket)
