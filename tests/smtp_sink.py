"""A real SMTP server for the tests: an aiosmtpd sink on a free loopback port.

`SmtpSink` keeps what it receives (`ReceivedMail`: envelope plus parsed message), counts
SMTP sessions (Mailman's ``ConnectionCountingSMTP``) and injects failures:

- `SmtpSink.fail_next` answers the next N DATA commands with a given reply (451, 550...;
  a planned 2xx accepts the mail, which lets a test fail the third mail of a batch);
- `SmtpSink.drop_next` closes the connection at the next N DATA commands without replying;
- `SmtpSink.reject_recipient` refuses RCPT TO for one address with a given reply;
- `SmtpSink.refuse_connections` stops the listener (connections are refused) and starts
  it again on the same port.

The server runs in aiosmtpd's own thread; the shared state is guarded by a lock.
`smtp_sink_fixture` is a plain generator, to be wrapped with ``@pytest.fixture``.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import LOOPBACK, free_port

_DROP = object()


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One accepted mail: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class _CountingController(Controller):
    """A Controller that tells the sink about every new SMTP session."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(sink, **kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        self._sink._session_opened()
        return SMTP(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that records mail and fails on demand."""

    def __init__(self, host: str = LOOPBACK, port: int | None = None, store: bool = True) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.store = store
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._data_plan: deque[object] = deque()
        self._rcpt_replies: dict[str, str] = {}
        self._controller: _CountingController | None = None

    def start(self) -> SmtpSink:
        """Start listening; the session aiosmtpd opens to check itself is not counted."""
        if self._controller is None:
            controller = _CountingController(self, hostname=self.host, port=self.port)
            controller.start()
            self._controller = controller
            with self._lock:
                self.connections = 0
        return self

    def stop(self) -> None:
        """Stop listening and close open sessions."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def clear(self) -> None:
        """Forget received mail, counters and pending failures."""
        with self._lock:
            self.messages.clear()
            self.connections = 0
            self.accepted = 0
            self._data_plan.clear()
            self._rcpt_replies.clear()

    def fail_next(self, code: int, message: str = "injected failure", count: int = 1) -> None:
        """Answer the next ``count`` DATA commands with ``code message`` instead of 250."""
        with self._lock:
            self._data_plan.extend([f"{code} {message}"] * count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection at the next ``count`` DATA commands, without any reply."""
        with self._lock:
            self._data_plan.extend([_DROP] * count)

    def reject_recipient(self, address: str, code: int, message: str = "no such user") -> None:
        """Answer RCPT TO for ``address`` with ``code message`` from now on."""
        with self._lock:
            self._rcpt_replies[address.lower()] = f"{code} {message}"

    def refuse_connections(self, on: bool) -> None:
        """Simulate an outage: True stops the listener, False restarts it on the same port."""
        if on:
            self.stop()
        else:
            self.start()

    # aiosmtpd handler hooks (called in the server thread).

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            reply = self._rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            planned = self._data_plan.popleft() if self._data_plan else None
        if planned is _DROP:
            if server.transport is not None:
                server.transport.close()  # the reply below is never written
            return "421 dropped"
        reply = planned if isinstance(planned, str) else "250 OK"
        if reply.startswith("2"):  # a planned 2xx is an acceptance like any other
            self._record(envelope)
        return reply

    def _record(self, envelope: Envelope) -> None:
        """Count the mail and keep it (parsed) unless ``store`` is off."""
        mail = None
        if self.store:
            content = envelope.original_content or b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            mail = ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message)
        with self._lock:
            self.accepted += 1
            if mail is not None:
                self.messages.append(mail)

    def _session_opened(self) -> None:
        with self._lock:
            self.connections += 1


def smtp_sink_fixture() -> Iterator[SmtpSink]:
    """A started `SmtpSink`, stopped afterwards; wrap with ``@pytest.fixture``."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
