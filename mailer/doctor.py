"""``mailer doctor``: check config, database, rules, templates, IMAP and SMTP, in plain words."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosmtplib
from sqlalchemy import text

from mailer import db
from mailer.config import Config, secret
from mailer.errors import MailerError
from mailer.ingest.imap import ImapSource
from mailer.rules.loader import load_rules
from mailer.templates.render import Renderer

Check = tuple[str, Callable[[], str]]


def checks(config: Config) -> Iterator[Check]:
    """(what, check) pairs; a check returns a short OK text or raises with the problem."""
    yield "configuration", lambda: f"loaded from {config.source}"
    yield "database", lambda: _database(config)
    yield "rules", lambda: _rules(config)
    yield "templates", lambda: _templates(config)
    for index, box in enumerate(config.mailboxes):
        yield f"mailbox {box.name} ({box.host}:{box.port})", functools.partial(_imap, config,
                                                                             index)
    yield f"smtp ({config.smtp.host}:{config.smtp.port})", lambda: _smtp(config)


def run(config: Config) -> list[tuple[str, bool, str]]:
    """Run every check; never raises."""
    results = []
    for what, check in checks(config):
        try:
            results.append((what, True, check()))
        except (MailerError, OSError, ValueError) as exc:
            results.append((what, False, str(exc) or type(exc).__name__))
        except Exception as exc:  # report anything else in plain words, too
            results.append((what, False, f"{type(exc).__name__}: {exc}"))
    return results


def _database(config: Config) -> str:
    engine = db.make_engine(config.database.url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db.ensure_schema(config.database.url)
    finally:
        engine.dispose()
    return f"reachable, schema current ({engine.dialect.name})"


def _rules(config: Config) -> str:
    rules = load_rules(Path(config.rules.path) if config.rules.path else None)
    return f"{len(rules.rules)} rules from {rules.source}"


def _templates(config: Config) -> str:
    directory = config.outbound.templates_dir
    problems = Renderer(Path(directory) if directory else None).check()
    if problems:
        raise ValueError("; ".join(problems[:3]))
    return "every template renders in every language"


def _imap(config: Config, index: int) -> str:
    box = config.mailboxes[index]
    source = ImapSource(box, secret(box.password_env, f"mailboxes[{index}].password_env"))
    try:
        uidvalidity = source.open()
        waiting = len(source.uids_after(0))
    finally:
        source.close()
    return f"logged in, {box.folder} has {waiting} mail(s), UIDVALIDITY {uidvalidity}"


def _smtp(config: Config) -> str:
    smtp = config.smtp
    password = secret(smtp.password_env, "smtp.password_env") if smtp.username else None

    async def probe() -> str:
        client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, timeout=10,
                                 use_tls=smtp.security == "ssl",
                                 start_tls=smtp.security == "starttls")
        await client.connect()
        try:
            if smtp.username and password is not None:
                await client.login(smtp.username, password)
            code, _ = await client.noop()
        finally:
            await client.quit()
        return f"connected{' and logged in' if smtp.username else ''}, NOOP answered {code}"
    try:
        return asyncio.run(probe())
    except aiosmtplib.SMTPException as exc:
        raise ValueError(f"SMTP refused: {exc}") from exc
