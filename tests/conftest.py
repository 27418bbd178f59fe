"""Shared pytest fixtures: the real servers (Dovecot, PostgreSQL), database URLs, the corpus.

A missing server or corpus skips the tests that need it on a developer machine and fails
them when ``CI`` is set, so CI can never pass by skipping. App-level fixtures belong in
``tests/integration/conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.servers import (
    Dovecot,
    ImapUser,
    ServerUnavailableError,
    dovecot_available,
    temporary_pg_database,
)

REPO = Path(__file__).resolve().parent.parent
_user_numbers = itertools.count(1)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when running under CI (env ``CI`` set)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so ``-m "not dovecot"`` deselects them."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "dovecot" in names or "imap_user" in names:
            item.add_marker(pytest.mark.dovecot)
        if "pg_url" in names:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot shared by the session; use `imap_user` for a mailbox of your own."""
    if not dovecot_available():
        unavailable("Dovecot needs /usr/sbin/dovecot (apt-get install dovecot-imapd) and root")
    # Not under pytest's basetemp: another pytest run resets /tmp/pytest-of-<user> to 0700,
    # and Dovecot's unprivileged auth process must traverse to the users files.
    root = Path(tempfile.mkdtemp(prefix="mailer-dovecot-"))
    server = Dovecot(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> ImapUser:
    """A fresh, empty mailbox on the session Dovecot, unseen by any other test."""
    address = f"support-{next(_user_numbers)}@exchange.example"
    password = secrets.token_urlsafe(12)
    dovecot.add_user(address, password)
    return ImapUser(address=address, password=password, host=dovecot.host, port=dovecot.port)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of a new PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(temporary_pg_database())
        except ServerUnavailableError as exc:
            unavailable(str(exc))
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL, once for SQLite in `tmp_path` and once for a fresh PostgreSQL db."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'mailer.db'}"


TEST_DB = os.environ.get("MAILER_TEST_DB", "sqlite")


@contextlib.contextmanager
def _store(tmp: Path) -> Iterator[str]:
    """A migrated database: SQLite in ``tmp``, or a fresh PostgreSQL one when the
    environment says ``MAILER_TEST_DB=postgresql`` (CI runs the suite both ways)."""
    from mailer import db

    if TEST_DB == "postgresql":
        try:
            with temporary_pg_database() as url:
                db.upgrade(url)
                yield url
        except ServerUnavailableError as exc:
            unavailable(str(exc))
        return
    url = f"sqlite:///{tmp / 'mailer.db'}"
    db.upgrade(url)
    yield url


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    """The database the test's daemon uses (see `_store`)."""
    with _store(tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`store_url` shared by a module."""
    with _store(tmp_path_factory.mktemp("store")) as url:
        yield url


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The labelled dev corpus: ``$MAILER_CORPUS_DIR`` or ``../shared/corpus/dev``."""
    configured = os.environ.get("MAILER_CORPUS_DIR")
    path = Path(configured) if configured else REPO.parent / "shared" / "corpus" / "dev"
    if not path.is_dir():
        unavailable(f"corpus not found at {path} (set MAILER_CORPUS_DIR)")
    return path
