"""A full round trip on real servers: Dovecot in, the SMTP sink out.

Customer mail -> acknowledgement -> agent answers the notification by mail -> relayed reply
-> the customer answers the relayed reply: one ticket, and every header chains.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session, select

from mailer.app import build_app, ingest_once, send_once
from mailer.config import AgentsConfig
from mailer.models import Message, Ticket, utcnow
from mailer.smtp import SmtpSender
from tests.integration.conftest import PASSWORD_ENV, make_config
from tests.smtp_sink import SmtpSink


def test_round_trip_stays_on_one_ticket(store_url, tmp_path, dovecot, imap_user,
                                        monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, imap_user.password)
    with SmtpSink() as sink:
        config = make_config(imap_user, store_url, tmp_path)
        config = dataclasses.replace(
            config, smtp=dataclasses.replace(config.smtp, host=sink.host, port=sink.port),
            agents=AgentsConfig(("agent@exchange.example",), (), "queue@exchange.example"))
        app = build_app(config, sender=SmtpSender(config.smtp, None, timeout=5))

        def tick(raw: bytes) -> None:
            dovecot.append(imap_user.address, "INBOX", raw)
            ingest_once(app)
            send_once(app, utcnow())

        tick(b"From: Kim <kim@example.com>\r\nTo: support@exchange.example\r\n"
             b"Subject: Deposit missing\r\nMessage-ID: <k1@example.com>\r\n\r\n"
             b"I deposited 100 USDT, not credited.\r\n")
        ack = next(m.message for m in sink.messages if "kim@example.com" in m.rcpt_tos)
        note = next(m.message for m in sink.messages if "queue@exchange.example" in m.rcpt_tos)
        assert ack["In-Reply-To"].strip() == "<k1@example.com>"
        tick(f"From: agent@exchange.example\r\nTo: queue@exchange.example\r\n"
             f"Subject: Re: {note['Subject']}\r\nMessage-ID: <a1@exchange.example>\r\n"
             f"In-Reply-To: {note['Message-ID']}\r\nReferences: {note['Message-ID']}\r\n\r\n"
             f"We credited it now.\r\n\r\nOn Monday the desk wrote:\r\n> internal summary\r\n"
             .encode())
        relayed = [m.message for m in sink.messages if "kim@example.com" in m.rcpt_tos][-1]
        text = relayed.get_body(("plain",)).get_content()
        assert "We credited it now." in text and "internal summary" not in text
        assert relayed["In-Reply-To"].strip() == ack["Message-ID"].strip()
        assert relayed["References"].split() == ["<k1@example.com>", ack["Message-ID"].strip()]
        tick(f"From: Kim <kim@example.com>\r\nTo: support@exchange.example\r\n"
             f"Subject: {relayed['Subject']}\r\nMessage-ID: <k2@example.com>\r\n"
             f"In-Reply-To: {relayed['Message-ID']}\r\n"
             f"References: {relayed['References']} {relayed['Message-ID']}\r\n\r\n"
             f"Thanks, I see it.\r\n".encode())
    with Session(app.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 1
        kinds = [m.kind for m in session.exec(select(Message).order_by(Message.id))]
    assert kinds == ["customer", "ack", "notification", "agent_mail", "agent", "customer"]
    app.engine.dispose()
