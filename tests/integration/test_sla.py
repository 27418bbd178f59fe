"""SLA clocks with simulated time: reminders, breaches, pauses, replies, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from mailer.app import build_app, ingest_once
from mailer.config import parse_config
from mailer.models import Outbox, Ticket
from mailer.sla.check import check_sla
from mailer.sla.service import agent_replied, customer_replied, initial, set_status
from tests.fakes import FakeSource

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_EVENING = datetime(2026, 11, 20, 19, 30, tzinfo=BERLIN).astimezone(UTC)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def desk(tmp_path, store_url):
    url = store_url
    source = FakeSource()
    config = parse_config({
        "database": {"url": url},
        "mailboxes": [{"name": "fake", "host": "127.0.0.1", "port": 143, "security": "none",
                       "username": "u", "password_env": "UNUSED"}],
        "storage": {"attachments_dir": str(tmp_path / "att")},
        "agents": {"queue_address": "queue@exchange.example"},
        "sla": {
            "default_policy": "office",
            "calendars": {"weekdays": {"timezone": "Europe/Berlin", "hours": {
                d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}}},
            "policies": {"office": {"calendar": "weekdays", "first_response_hours": 4,
                                    "next_update_hours": 8, "resolution_hours": 40,
                                    "escalation_address": "boss@exchange.example",
                                    "notify_customer_on_breach": True}},
            "by_urgency": {}}})
    app = build_app(config, source_factory=lambda box: source)
    yield app, source
    app.engine.dispose()


def open_ticket(app, source, created=FRIDAY_EVENING):
    source.deliver(b"From: ann@example.com\r\nTo: support@exchange.example\r\n"
                   b"Subject: Account question\r\nMessage-ID: <q1@example.com>\r\n\r\nHi\r\n")
    ingest_once(app)
    with Session(app.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        for key, value in initial(app.config.sla, ticket.sla_policy, created).items():
            setattr(ticket, key, value)
        ticket.created_at = created
        session.add(ticket)
        session.commit()
        return ticket.id


def keys(app, kind=None):
    with Session(app.engine) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.kind).like("sla%"))).all()
    return sorted(r.dedupe_key for r in rows if kind is None or r.kind == kind)


def test_friday_evening_ticket_reminds_and_breaches_at_business_moments(desk):
    app, source = desk
    ticket_id = open_ticket(app, source)
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.first_response_due_at.astimezone(UTC) == berlin(23, 13)  # Mon 13:00
    assert not check_sla(app.engine, app.config, app.signer, berlin(21, 12))  # Saturday
    assert not check_sla(app.engine, app.config, app.signer, berlin(23, 11, 59))
    assert check_sla(app.engine, app.config, app.signer, berlin(23, 12))["reminder"] == 1
    assert keys(app) == ["sla:T-000001:first_response:75"]
    check_sla(app.engine, app.config, app.signer, berlin(23, 12, 40))
    check_sla(app.engine, app.config, app.signer, berlin(23, 13, 1))
    assert keys(app) == ["sla:T-000001:first_response:75", "sla:T-000001:first_response:90",
                         "sla:T-000001:first_response:breach",
                         "sla:T-000001:first_response:update"]
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.breached_targets == ["first_response"]
    escalation = [r for r in _rows(app) if r.kind == "sla_escalation"]
    assert escalation[0].to_addr == "boss@exchange.example"


def _rows(app):
    with Session(app.engine) as session:
        return session.exec(select(Outbox)).all()


def test_every_reminder_is_sent_once_across_restarts(desk):
    app, source = desk
    open_ticket(app, source)
    for _ in range(3):  # three "daemons" / restarts at the same moment
        restarted = build_app(app.config, source_factory=lambda box: source)
        check_sla(restarted.engine, restarted.config, restarted.signer, berlin(23, 13, 5))
        restarted.engine.dispose()
    assert keys(app) == ["sla:T-000001:first_response:75", "sla:T-000001:first_response:90",
                         "sla:T-000001:first_response:breach",
                         "sla:T-000001:first_response:update"]


def test_agent_reply_stops_the_first_response_clock(desk):
    app, source = desk
    ticket_id = open_ticket(app, source)
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        agent_replied(app.config.sla, ticket, berlin(23, 10))
        session.add(ticket)
        session.commit()
    check_sla(app.engine, app.config, app.signer, berlin(23, 17))
    assert keys(app) == []


def test_pending_pauses_across_a_weekend_and_customer_reply_restarts(desk):
    app, source = desk
    ticket_id = open_ticket(app, source, created=berlin(20, 16))  # Fri 16:00, due Mon 11:00
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        set_status(app.config.sla, ticket, "pending", berlin(20, 17))  # 1 h used
        session.add(ticket)
        session.commit()
    assert not check_sla(app.engine, app.config, app.signer, berlin(24, 12))  # paused
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.sla_next_at is None
        customer_replied(app.config.sla, ticket, berlin(24, 9))  # Tue 09:00, back to open
        session.add(ticket)
        session.commit()
        assert ticket.status == "open"
        # paused Fri 17:00 -> Tue 09:00 = 1 business hour (Fri 17-18) + 9 (Mon) = 10 h
        assert ticket.paused_seconds == pytest.approx(10 * 3600)
        assert ticket.first_response_due_at.astimezone(UTC) == berlin(24, 12)  # 3 h left
    check_sla(app.engine, app.config, app.signer, berlin(24, 12, 1))
    assert "sla:T-000001:first_response:breach" in keys(app)


def test_customer_reply_after_first_response_starts_next_update(desk):
    app, source = desk
    ticket_id = open_ticket(app, source, created=berlin(23, 9))
    with Session(app.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        agent_replied(app.config.sla, ticket, berlin(23, 10))
        customer_replied(app.config.sla, ticket, berlin(23, 11))
        session.add(ticket)
        session.commit()
        assert ticket.next_update_due_at.astimezone(UTC) == berlin(24, 10)  # 8 business h
    check_sla(app.engine, app.config, app.signer, berlin(24, 10) + timedelta(minutes=1))
    assert "sla:T-000001:next_update:breach" in keys(app)
