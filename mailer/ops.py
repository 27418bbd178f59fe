"""Operations endpoints on loopback: ``/metrics`` (Prometheus text format) and ``/healthz``.

Served from a thread of the daemon with the stdlib HTTP server. Every figure is read from
the database at scrape time, so several daemons report the same totals; poll latency is
per process.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from mailer.errors import ConfigError
from mailer.models import Inbound, Outbox, Ticket

log = logging.getLogger(__name__)


def metrics_text(engine: Engine, poll_seconds: dict[str, float], now: datetime) -> str:
    """The Prometheus exposition of the current state."""
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    with Session(engine) as session:
        inbound = dict(session.exec(select(Inbound.status, func.count()).group_by(
            Inbound.status)).all())
        states = dict(session.exec(select(Ticket.status, func.count()).group_by(
            Ticket.status)).all())
        outbox = dict(session.exec(select(Outbox.status, func.count()).group_by(
            Outbox.status)).all())
        breached = session.exec(select(func.count()).select_from(Ticket).where(
            col(Ticket.breached_at).is_not(None))).one()
        soon = now + timedelta(hours=1)
        at_risk = session.exec(select(func.count()).select_from(Ticket).where(
            col(Ticket.status).in_(("new", "open")), col(Ticket.breached_at).is_(None),
            col(Ticket.first_response_due_at) <= soon)).one()
    gauge("mailer_mails_ingested", "Inbound mails processed into tickets",
          [("", inbound.get("processed", 0))])
    gauge("mailer_mails_by_status", "Inbound mails by status",
          [(f'{{status="{k}"}}', v) for k, v in sorted(inbound.items())])
    gauge("mailer_mails_quarantined", "Mails held in quarantine or failed",
          [("", inbound.get("quarantined", 0) + inbound.get("failed", 0))])
    gauge("mailer_tickets", "Tickets by state",
          [(f'{{state="{k}"}}', v) for k, v in sorted(states.items())])
    gauge("mailer_outbox_depth", "Outbox rows waiting to be sent", [("", outbox.get("pending", 0))])
    gauge("mailer_outbox_failures", "Outbox rows failed or uncertain",
          [("", outbox.get("failed", 0) + outbox.get("uncertain", 0))])
    gauge("mailer_sla_breached", "Tickets that breached an SLA target", [("", breached)])
    gauge("mailer_sla_at_risk", "Open tickets whose first response is due within the hour",
          [("", at_risk)])
    gauge("mailer_poll_seconds", "Duration of the last poll of each mailbox",
          [(f'{{mailbox="{k}"}}', v) for k, v in sorted(poll_seconds.items())])
    return "\n".join(lines) + "\n"


def healthy(engine: Engine) -> bool:
    """Whether the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means unhealthy; say so, do not crash the server
        log.warning("health check: database unreachable", exc_info=True)
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` -> (host, port); only loopback addresses are allowed."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        if not ipaddress.ip_address(host).is_loopback or not 0 < int(port) < 65536:
            raise ValueError(value)
    except ValueError as exc:
        raise ConfigError("ops.listen", f"expected a loopback host:port, got {value!r}") from exc
    return host, int(port)


def serve(listen: str, engine: Engine, poll_seconds: Callable[[], dict[str, float]]
          ) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; returns the server (call ``shutdown``)."""
    host, port = parse_listen(listen)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = metrics_text(engine, poll_seconds(), datetime.now(UTC)).encode()
                self._reply(200, body, "text/plain; version=0.0.4")
            elif self.path == "/healthz":
                ok = healthy(engine)
                self._reply(200 if ok else 503, b"ok\n" if ok else b"database unreachable\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("ops %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    log.info("ops endpoints on http://%s:%d/metrics and /healthz", host, port)
    return server
