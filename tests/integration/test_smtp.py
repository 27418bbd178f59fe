"""SmtpSender against a real aiosmtpd sink on loopback: batching, classification, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from mailer.config import SmtpConfig
from mailer.smtp import SendResult, SmtpSender, send_batch_sync
from tests.servers import free_port
from tests.smtp_sink import SmtpSink, smtp_sink_fixture

FROM = "support@exchange.example"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    yield from smtp_sink_fixture()


def make_sender(port: int, persistent: bool = True) -> SmtpSender:
    config = SmtpConfig(host="127.0.0.1", port=port, security="none", from_address=FROM)
    return SmtpSender(config, password=None, timeout=5.0, persistent=persistent)


def make_mail(n: int, to: str = "customer@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = to
    msg["Subject"] = f"[#{n}] We received your request"
    msg.set_content(f"Ticket {n}: thanks, we are on it.\n")
    return msg


def batch(count: int) -> list[tuple[str, EmailMessage]]:
    return [(f"m{n}", make_mail(n)) for n in range(count)]


def outcome(results: list[SendResult]) -> list[tuple[str, bool, bool, int | None]]:
    return [(r.key, r.ok, r.permanent, r.code) for r in results]


def test_batch_of_20_uses_one_connection(smtp_sink):
    results = send_batch_sync(make_sender(smtp_sink.port), batch(20))

    assert all(r.ok and r.code == 250 and r.error is None for r in results)
    assert [r.key for r in results] == [f"m{n}" for n in range(20)]
    assert smtp_sink.connections == 1
    assert len(smtp_sink.messages) == 20
    first = smtp_sink.messages[0]
    assert first.mail_from == FROM
    assert first.rcpt_tos == ("customer@example.org",)
    assert first.message["Subject"] == "[#0] We received your request"


def test_per_message_mode_opens_one_connection_per_mail(smtp_sink):
    results = send_batch_sync(make_sender(smtp_sink.port, persistent=False), batch(20))

    assert all(r.ok for r in results)
    assert smtp_sink.connections == 20
    assert len(smtp_sink.messages) == 20


def test_recipients_come_from_to_cc_bcc_and_bcc_is_not_transmitted(smtp_sink):
    msg = make_mail(1)
    msg["Cc"] = "cc@example.org"
    msg["Bcc"] = "hidden@example.org"

    [result] = send_batch_sync(make_sender(smtp_sink.port), [("k", msg)])

    assert result.ok
    [got] = smtp_sink.messages
    assert set(got.rcpt_tos) == {"customer@example.org", "cc@example.org", "hidden@example.org"}
    assert got.message["Bcc"] is None


def test_4xx_is_temporary_5xx_permanent_and_the_rest_is_sent(smtp_sink):
    items = batch(5)
    smtp_sink.fail_next(250)  # m0 accepted: a planned 250 is an ordinary reply
    smtp_sink.fail_next(451, "try again later")  # m1
    smtp_sink.fail_next(550, "mailbox unavailable")  # m2

    results = send_batch_sync(make_sender(smtp_sink.port), items)

    assert outcome(results) == [
        ("m0", True, False, 250),
        ("m1", False, False, 451),
        ("m2", False, True, 550),
        ("m3", True, False, 250),
        ("m4", True, False, 250),
    ]
    assert results[1].error is not None and "try again later" in results[1].error
    assert smtp_sink.connections == 1
    assert [m.message["Subject"][:4] for m in smtp_sink.messages] == ["[#0]", "[#3]", "[#4]"]


def test_recipients_refused_is_permanent_only_when_all_are_5xx(smtp_sink):
    smtp_sink.reject_recipient("gone@example.org", 550)
    smtp_sink.reject_recipient("busy@example.org", 450, "mailbox busy")
    items = [
        ("gone", make_mail(1, "gone@example.org")),
        ("busy", make_mail(2, "busy@example.org, gone@example.org")),
        ("some", make_mail(3, "customer@example.org, gone@example.org")),
    ]

    gone, busy, some = send_batch_sync(make_sender(smtp_sink.port), items)

    assert (gone.ok, gone.permanent, gone.code) == (False, True, 550)
    assert (busy.ok, busy.permanent, busy.code) == (False, False, 450)
    # Accepted for one recipient: delivered, with the refusal noted.
    assert some.ok and some.error is not None and "550" in some.error
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("customer@example.org",)]


def test_drop_mid_batch_fails_that_mail_then_reconnects_for_the_rest(smtp_sink):
    items = batch(6)
    smtp_sink.fail_next(250, count=2)  # m0, m1 go through
    smtp_sink.drop_next()  # m2: connection closed with no reply

    results = send_batch_sync(make_sender(smtp_sink.port), items)

    assert [r.ok for r in results] == [True, True, False, True, True, True]
    dropped = results[2]
    assert not dropped.permanent and dropped.code is None
    assert dropped.error is not None and "SMTPServerDisconnected" in dropped.error
    assert smtp_sink.connections == 2
    assert len(smtp_sink.messages) == 5


def test_outage_gives_temporary_results_and_no_exception():
    port = free_port()  # nothing listens here
    seen: list[SendResult] = []

    results = send_batch_sync(make_sender(port), batch(4), seen.append)

    assert seen == results
    assert [(r.ok, r.permanent, r.code) for r in results] == [(False, False, None)] * 4
    assert all(r.error and "SMTPConnectError" in r.error for r in results)


def test_outage_mid_batch_fails_the_rest_after_one_reconnect(smtp_sink):
    sender = make_sender(smtp_sink.port)
    items = batch(5)

    def on_result(result: SendResult) -> None:
        if result.key == "m1":
            # The server goes away after m1: the open session is cut and the one
            # reconnect attempt is refused.
            smtp_sink.refuse_connections(True)

    results = send_batch_sync(sender, items, on_result)

    assert [r.ok for r in results] == [True, True, False, False, False]
    assert all(not r.permanent for r in results)
    assert all("SMTPConnectError" in (r.error or "") for r in results[3:])


def test_on_result_is_called_after_each_mail_before_the_next_is_sent(smtp_sink):
    received_when_called: list[int] = []

    async def on_result(result: SendResult) -> None:
        received_when_called.append(smtp_sink.accepted)

    sender = make_sender(smtp_sink.port)
    send_batch_sync(sender, batch(3), on_result)

    assert received_when_called == [1, 2, 3]


def test_empty_batch_opens_no_connection(smtp_sink):
    assert send_batch_sync(make_sender(smtp_sink.port), []) == []
    assert smtp_sink.connections == 0


def test_header_with_cr_lf_cannot_be_built():
    # Guard: header injection ("\r\nBcc: attacker") is stopped by EmailMessage itself, so
    # it can never reach the wire through SmtpSender.
    msg = EmailMessage()
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        msg["Subject"] = "Your ticket\r\nBcc: attacker@evil.example"
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        msg["To"] = "customer@example.org\nBcc: attacker@evil.example"


def test_sender_repr_has_no_password():
    config = SmtpConfig(host="relay.example", port=587, security="starttls", username="u")
    sender = SmtpSender(config, password="s3cret-pw")

    assert "s3cret-pw" not in repr(sender)
