"""The database handle: engine, one-transaction sessions and migrations.

SQLite (WAL, foreign keys on, a busy timeout) is the embedded default under the data directory;
PostgreSQL is used through psycopg 3 (``postgresql://`` URLs are rewritten to
``postgresql+psycopg://``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def default_sqlite_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/facekey.db``, creating ``data_dir`` if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / 'facekey.db').as_posix()}"


def normalise_url(url: str) -> URL:
    """Parse ``url``; plain PostgreSQL URLs get the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    """Per-connection SQLite settings: WAL, foreign keys, busy timeout."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """A database: one SQLAlchemy engine and a session factory.

    Use :meth:`session` for one use case: it commits when the block ends normally and rolls back
    when it raises. Objects stay readable after the block (``expire_on_commit=False``).
    """

    def __init__(self, url: str) -> None:
        self._url = normalise_url(url)
        self._engine = _create_engine(self._url)
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False)

    @property
    def url(self) -> URL:
        """The database URL (``render_as_string(hide_password=True)`` to show it)."""
        return self._url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session holding one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Upgrade the schema to the latest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self._url.render_as_string(hide_password=True)!r})"
