"""Outbound SMTP: send a batch of rendered mails and classify each outcome.

`SmtpSender` is the `MailSender` the outbox uses. One batch is one aiosmtplib connection
(``persistent=True``, the default) or one connection per mail (``persistent=False``, kept
for the benchmark). Each mail gets a `SendResult`, handed to ``on_result`` as soon as it is
known so the caller can commit that mail's status before the next one is sent.

Classification (Mailman's ``SomeRecipientsFailed(temporary, permanent)``):

- a 4xx reply, or a connection error (refused, dropped, timed out, ``OSError``): temporary;
- a 5xx reply: permanent; ``SMTPRecipientsRefused`` is permanent only when every refused
  recipient got a 5xx;
- a mail that cannot be serialised (``ValueError``, ``email.errors.MessageError``) or that
  needs an extension the server lacks (``SMTPNotSupported``): permanent, since resending
  the same bytes to the same server cannot succeed;
- a failure while opening the connection (connect, EHLO, STARTTLS, AUTH) is temporary
  whatever its code: it says nothing about the mail, and a wrong password must not mark
  the whole outbox as undeliverable.

A connection lost mid-batch fails the mail in flight (temporary) and is reopened once for
the rest; when that reconnect fails, every remaining mail gets the same temporary failure.
Delivery errors never escape `SmtpSender.send_batch`.

Nothing here logs a body, a password or a list of addresses: one DEBUG line per mail with
its key and reply code.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from mailer.config import SmtpConfig

log = logging.getLogger(__name__)

#: The reply code recorded for a mail the server accepted (the final reply to DATA).
ACCEPTED = 250

#: Errors that mean the connection is gone or never came up; the mail in flight is retried.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,  # includes ConnectionError and TimeoutError
)

#: Errors caused by the mail itself; sending the same mail again cannot succeed.
MESSAGE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad header, several Resent- blocks, non-ASCII address without SMTPUTF8
    email.errors.MessageError,
    aiosmtplib.SMTPNotSupported,
)

Items = Sequence[tuple[str, EmailMessage]]
OnResult = Callable[["SendResult"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one mail; ``key`` is the caller's id for it (e.g. an outbox row id).

    ``ok`` with an ``error`` means some recipients were refused but others accepted it.
    """

    key: str
    ok: bool
    permanent: bool
    code: int | None
    error: str | None


BeforeSend = Callable[[str], None]


class MailSender(Protocol):
    """The seam between the outbox and a mail transport."""

    async def send_batch(self, items: Items, on_result: OnResult | None = None,
                         before_send: BeforeSend | None = None) -> list[SendResult]:
        """Send every ``(key, mail)`` and return one result per item, in order.

        ``before_send(key)`` runs right before a mail is handed to the server (the outbox
        records that moment: from then on the mail may have been delivered).
        """
        ...


class _ConnectFailedError(Exception):
    """Opening a connection failed; ``result_for`` turns it into each remaining mail's result."""

    def __init__(self, code: int | None, error: str) -> None:
        super().__init__(error)
        self.code = code
        self.error = error


class SmtpSender:
    """A `MailSender` over aiosmtplib, configured by `SmtpConfig`."""

    def __init__(
        self,
        config: SmtpConfig,
        password: str | None,
        timeout: float = 30.0,
        persistent: bool = True,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.persistent = persistent
        self._password = password
        self._local_hostname: str | None = None

    def __repr__(self) -> str:
        # Spelled out so that the password can never reach a log line through repr().
        c = self.config
        return f"SmtpSender({c.host}:{c.port}, security={c.security}, user={c.username!r})"

    async def send_batch(self, items: Items, on_result: OnResult | None = None,
                         before_send: BeforeSend | None = None) -> list[SendResult]:
        """See `MailSender`."""
        results: list[SendResult] = []
        client: aiosmtplib.SMTP | None = None
        failed: _ConnectFailedError | None = None
        try:
            for key, message in items:
                if failed is None and (client is None or not client.is_connected):
                    client, failed = await self._open(client)
                if failed is not None or client is None:
                    result = _connect_failure(key, failed)
                else:
                    if before_send is not None:
                        before_send(key)
                    result = await self._send_one(client, key, message)
                    if not self.persistent or not client.is_connected:
                        await _close(client)
                results.append(result)
                await _notify(on_result, result)
        finally:
            if client is not None:
                await _close(client)
        return results

    async def _open(
        self, old: aiosmtplib.SMTP | None
    ) -> tuple[aiosmtplib.SMTP | None, _ConnectFailedError | None]:
        """Open a fresh connection (closing ``old``); on failure return why instead."""
        if old is not None:
            await _close(old)
        client = self._client()
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            log.error("smtp %s:%s refused the session: %s", self.config.host, self.config.port,
                      exc.code)
            return None, _ConnectFailedError(exc.code, _describe(exc))
        except (OSError, aiosmtplib.SMTPException) as exc:  # every connection error included
            log.warning("smtp %s:%s unreachable: %s", self.config.host, self.config.port,
                        type(exc).__name__)
            return None, _ConnectFailedError(None, _describe(exc))
        return client, None

    def _client(self) -> aiosmtplib.SMTP:
        """A not-yet-connected client for the configured relay."""
        if self._local_hostname is None:
            # aiosmtplib would call getfqdn() (a DNS lookup) on every connection.
            self._local_hostname = socket.getfqdn()
        security = self.config.security
        return aiosmtplib.SMTP(
            hostname=self.config.host,
            port=self.config.port,
            username=self.config.username,
            password=self._password if self.config.username else None,
            local_hostname=self._local_hostname,
            timeout=self.timeout,
            use_tls=security == "ssl",
            # False, not None: None would upgrade opportunistically and then fail on an
            # unverifiable certificate; "none" means plain text by decision.
            start_tls=security == "starttls",
        )

    async def _send_one(
        self, client: aiosmtplib.SMTP, key: str, message: EmailMessage
    ) -> SendResult:
        """Send one mail on an open connection and classify the outcome."""
        try:
            refused, _reply = await client.send_message(message, sender=self.config.from_address)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            result = _recipients_refused(key, exc)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # "service closing": the server is about to hang up
                client.close()
            result = SendResult(key, False, exc.code >= 500, exc.code, _describe(exc))
        except CONNECTION_ERRORS as exc:
            client.close()  # the session state is unknown: never reuse it
            result = SendResult(key, False, False, None, _describe(exc))
        except MESSAGE_ERRORS as exc:
            result = SendResult(key, False, True, None, _describe(exc))
        except aiosmtplib.SMTPException as exc:
            result = SendResult(key, False, False, None, _describe(exc))
        else:
            result = _accepted(key, refused)
        log.debug("smtp key=%s code=%s ok=%s permanent=%s", key, result.code, result.ok,
                  result.permanent)
        return result


def send_batch_sync(
    sender: MailSender, items: Items, on_result: OnResult | None = None,
    before_send: BeforeSend | None = None,
) -> list[SendResult]:
    """Run `MailSender.send_batch` to completion from synchronous code (a scheduler job)."""
    return asyncio.run(sender.send_batch(items, on_result, before_send))


def _accepted(key: str, refused: dict[str, aiosmtplib.SMTPResponse]) -> SendResult:
    """The result of an accepted mail; some recipients may still have been refused."""
    if not refused:
        return SendResult(key, True, False, ACCEPTED, None)
    codes = sorted({response.code for response in refused.values()})
    note = f"{len(refused)} recipient(s) refused with {', '.join(map(str, codes))}"
    return SendResult(key, True, False, ACCEPTED, note)


def _recipients_refused(key: str, exc: aiosmtplib.SMTPRecipientsRefused) -> SendResult:
    """Every recipient was refused: permanent only if every refusal was a 5xx."""
    codes = [r.code for r in exc.recipients]
    permanent = bool(codes) and all(code >= 500 for code in codes)
    deciding = [code for code in codes if (code >= 500) == permanent]
    code = deciding[0] if deciding else None
    return SendResult(key, False, permanent, code, f"all recipients refused ({codes})")


def _connect_failure(key: str, failed: _ConnectFailedError | None) -> SendResult:
    """The result of a mail that could not be sent because no connection could be opened."""
    error = failed.error if failed is not None else "no connection"
    code = failed.code if failed is not None else None
    log.debug("smtp key=%s code=%s not sent: no connection", key, code)
    return SendResult(key, False, False, code, error)


def _describe(exc: BaseException) -> str:
    """A one-line error text for a result: the exception type and its message."""
    text = str(exc).replace("\r", " ").replace("\n", " ").strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _notify(on_result: OnResult | None, result: SendResult) -> None:
    """Call ``on_result``, awaiting it when it is a coroutine function."""
    if on_result is None:
        return
    outcome = on_result(result)
    if inspect.isawaitable(outcome):
        await outcome


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT politely if still connected, then drop the socket; errors here change nothing."""
    if client.is_connected:
        with contextlib.suppress(OSError, aiosmtplib.SMTPException):
            await client.quit()
    client.close()
