"""App-level fixtures: a migrated database, a config pointing at the test Dovecot user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailer import db
from mailer.app import App, build_app
from mailer.config import Config, parse_config
from tests.servers import ImapUser

PASSWORD_ENV = "MAILER_TEST_IMAP_PASSWORD"


def make_config(user: ImapUser, url: str, tmp: Path, storage: dict[str, Any] | None = None,
                **mailbox: Any) -> Config:
    """A config for one mailbox on the test Dovecot and the database at ``url``."""
    box = {"name": "support", "host": user.host, "port": user.port, "security": "none",
           "username": user.address, "password_env": PASSWORD_ENV, **mailbox}
    return parse_config({
        "database": {"url": url},
        "mailboxes": [box],
        "storage": {"attachments_dir": str(tmp / "attachments"), **(storage or {})},
        "support": {"addresses": ["support@exchange.example"],
                    "message_id_domain": "exchange.example"},
        "scheduler": {"poll_interval_seconds": 1},
    })


@pytest.fixture
def make_app(tmp_path: Path, imap_user: ImapUser,
             monkeypatch: pytest.MonkeyPatch) -> Callable[..., App]:
    """Build an App against the test mailbox; call with ``url=`` and mailbox overrides."""
    monkeypatch.setenv(PASSWORD_ENV, imap_user.password)
    apps: list[App] = []

    def factory(url: str, storage: dict[str, Any] | None = None, **mailbox: Any) -> App:
        app = build_app(make_config(imap_user, url, tmp_path, storage, **mailbox))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    """A migrated SQLite database, whatever MAILER_TEST_DB says."""
    url = f"sqlite:///{tmp_path / 'mailer.db'}"
    db.upgrade(url)
    return url


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    """A fresh PostgreSQL database with the migrations applied."""
    db.upgrade(pg_url)
    return pg_url
