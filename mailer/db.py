"""Engine, sessions and migrations.

SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout so a reader never blocks the
daemon; PostgreSQL needs nothing special. The schema is created by the Alembic migrations
under ``db/`` (never ``create_all``), so the tests exercise the migrations too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from mailer.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "db"


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; creates the directory of a SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(parsed.database)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: the module's
    # own implicit BEGIN breaks SAVEPOINTs, which the processor uses per message.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE: take the write lock at BEGIN, where busy_timeout applies. A deferred BEGIN
    # that reads, then writes after another thread committed fails at once with
    # SQLITE_BUSY ("database is locked") without waiting.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations to ``url``."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise ConfigError("database", f"migrations not found under {MIGRATIONS_DIR}")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(parsed.database)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def ensure_schema(url: str) -> None:
    """Make sure the schema is current: SQLite is migrated in place; other databases must
    be migrated explicitly (``mailer db upgrade``) so that several daemons never race."""
    if make_url(url).get_backend_name() == "sqlite":
        upgrade(url)
        return
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current != head:
        raise ConfigError("database.url", f"schema is at {current or 'nothing'}, code needs "
                          f"{head}: run `mailer db upgrade`")
