"""The application object: config, engine, signer and pipeline, built once and passed down.

No module-level globals are configured at import time; commands and the daemon build an
:class:`App` and hand it to service functions.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailer import db
from mailer.config import Config, MailboxConfig, secret
from mailer.errors import ConfigError, ImapConnectError
from mailer.ids import IdSigner
from mailer.ingest.imap import ImapSource, MailSource
from mailer.ingest.poll import PollResult, poll_mailbox
from mailer.ingest.process import Runner, process_pending
from mailer.leases import mailbox_lease
from mailer.models import Setting
from mailer.outbound.sender import send_due
from mailer.pipeline import Stage, build_pipeline
from mailer.rules.engine import RuleSet
from mailer.rules.loader import load_rules
from mailer.smtp import MailSender, SmtpSender
from mailer.templates.render import Renderer

log = logging.getLogger(__name__)
SECRET_KEY = "message_id_secret"
SourceFactory = Callable[[MailboxConfig], MailSource]


@dataclass(slots=True)
class App:
    """Everything a command or a job needs."""

    config: Config
    engine: Engine
    signer: IdSigner
    stages: tuple[Stage, ...]
    source_factory: SourceFactory
    rules: RuleSet
    renderer: Renderer
    sender: MailSender
    poll_errors: dict[str, str] = field(default_factory=dict)
    backoff: dict[str, tuple[int, float]] = field(default_factory=dict)
    poll_seconds: dict[str, float] = field(default_factory=dict)


def build_app(config: Config, source_factory: SourceFactory | None = None,
              sender: MailSender | None = None) -> App:
    """Build the App for ``config`` (the database must already be migrated)."""
    rules = load_rules(Path(config.rules.path) if config.rules.path else None)
    engine = db.make_engine(config.database.url)
    signer = IdSigner(_id_secret(config, engine), config.support.message_id_domain)
    renderer = Renderer(Path(config.outbound.templates_dir)
                        if config.outbound.templates_dir else None)
    app = App(config, engine, signer, build_pipeline(), source_factory or imap_source, rules,
              renderer, sender or smtp_sender(config))
    # Everything built so far lives as long as the daemon: keep it out of the cyclic GC's
    # scans (parsing got ~20% faster once SQLAlchemy and the rule pack were loaded).
    gc.freeze()
    return app


def runner(app: App) -> Runner:
    """The processing runner for ``app`` (its current rules)."""
    return Runner(app.engine, app.config, app.signer, app.rules, app.stages)


def reload_rules(app: App) -> bool:
    """Reload the rule file; on any error keep the previous rules and say why."""
    path = Path(app.config.rules.path) if app.config.rules.path else None
    try:
        app.rules = load_rules(path)
    except ConfigError as exc:
        log.error("rules not reloaded, keeping the previous ones: %s", exc)
        return False
    log.info("rules reloaded from %s (%d rules)", app.rules.source, len(app.rules.rules))
    return True


def smtp_sender(config: Config) -> MailSender:
    """The SMTP relay of the config (its password is read from the environment now)."""
    smtp = config.smtp
    password = secret(smtp.password_env, "smtp.password_env") if smtp.username else None
    return SmtpSender(smtp, password)


def send_once(app: App, now: datetime | None = None) -> Counter[str]:
    """One tick of the sender job."""
    return send_due(app.engine, app.config, app.renderer, app.sender, now)


def imap_source(box: MailboxConfig) -> MailSource:
    """The real IMAP source for a configured mailbox (reads its password now)."""
    return ImapSource(box, secret(box.password_env, f"mailboxes[{box.name}].password_env"))


def _id_secret(config: Config, engine: Engine) -> bytes:
    """The Message-ID signing key: from the environment, else generated once and kept."""
    env = config.support.id_secret_env
    if env and os.environ.get(env):
        return os.environ[env].encode()
    with Session(engine) as session:
        row = session.get(Setting, SECRET_KEY)
        if row is None:
            session.add(Setting(key=SECRET_KEY, value=secrets.token_hex(32)))
            try:
                session.commit()
            except IntegrityError:  # another daemon generated it first
                session.rollback()
            row = session.get(Setting, SECRET_KEY)
        assert row is not None
        return row.value.encode()


def poll_once(app: App, now: float | None = None) -> list[PollResult]:
    """Poll every mailbox once; a failing mailbox is logged and retried with backoff.

    ``now`` is a monotonic timestamp; a mailbox that failed is skipped until its backoff
    expires (5 s, 10 s, 20 s ... capped by ``scheduler.retry_max_seconds``).
    """
    now = time.monotonic() if now is None else now
    results = []
    for box in app.config.mailboxes:
        with mailbox_lease(app.engine, box.name) as held:
            result = _poll_box(app, box, now) if held else None
        if result is not None:
            results.append(result)
    return results


def _poll_box(app: App, box: MailboxConfig, now: float) -> PollResult | None:
    if app.backoff.get(box.name, (0, 0.0))[1] > now:
        return None
    started = time.monotonic()
    try:
        result = poll_mailbox(app.engine, app.source_factory(box), box,
                              app.config.storage.max_message_bytes)
    except ImapConnectError as exc:
        _failed(app, box.name, str(exc), now)
        return None
    finally:
        app.poll_seconds[box.name] = time.monotonic() - started
    app.poll_errors.pop(box.name, None)
    app.backoff.pop(box.name, None)
    log.info("mailbox=%s fetched=%d stored=%d duplicates=%d too_large=%d", box.name,
             result.fetched, result.stored, result.duplicates, result.too_large)
    return result


def _failed(app: App, name: str, error: str, now: float) -> None:
    failures = app.backoff.get(name, (0, 0.0))[0] + 1
    sched = app.config.scheduler
    delay = min(sched.retry_base_seconds * 2 ** (failures - 1), sched.retry_max_seconds)
    app.backoff[name] = (failures, now + delay)
    app.poll_errors[name] = error
    log.warning("mailbox=%s poll failed (%d in a row), retry in %.0fs: %s", name, failures,
                delay, error)


def process_once(app: App, limit: int | None = None) -> Counter[str]:
    """Run the pipeline over every stored, unprocessed mail."""
    return process_pending(runner(app), limit)


def ingest_once(app: App, now: float | None = None) -> tuple[list[PollResult], Counter[str]]:
    """One tick of the ingest job: for each mailbox whose lease we get, poll it and process
    its mail (in arrival order, so a reply never overtakes the mail it answers)."""
    now = time.monotonic() if now is None else now
    results: list[PollResult] = []
    counts: Counter[str] = Counter()
    for box in app.config.mailboxes:
        with mailbox_lease(app.engine, box.name) as held:
            if not held:
                continue
            result = _poll_box(app, box, now)
            counts += process_pending(runner(app), mailbox=box.name)
        if result is not None:
            results.append(result)
    return results, counts
