"""The database handle: engine, one-transaction sessions and migrations.

SQLite (WAL, foreign keys on, a busy timeout, secure delete) is the embedded default under the
data directory, its files readable by the owner only; PostgreSQL is used through psycopg 3
(``postgresql://`` URLs are rewritten to ``postgresql+psycopg://``).

pysqlite opens transactions late (at the first write) and never before a ``SAVEPOINT``, so
SQLAlchemy's transactions and savepoints would not be SQLite's. SQLAlchemy's documented recipe
fixes that: the driver's own transaction handling is switched off (``isolation_level = None``)
and SQLAlchemy emits ``BEGIN`` itself when its transaction begins. Every session is then one
SQLite transaction from its first statement, reads included, and ``begin_nested()`` works.

A deferred SQLite transaction that reads and then writes fails at once ("database is locked")
when another writer committed in between: its snapshot is stale and waiting cannot help. So a
:meth:`Database.session` begins ``IMMEDIATE`` (it takes the write lock first, waiting out the
busy timeout); :meth:`Database.read_session`, for the hot read-only paths, begins deferred and
never blocks behind a writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "facekey_sqlite_begin"


def default_sqlite_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/facekey.db``, creating ``data_dir`` (0700) if needed."""
    private_directory(data_dir)
    return f"sqlite:///{(data_dir / 'facekey.db').as_posix()}"


def private_directory(path: Path) -> Path:
    """``path`` created if needed and made the owner's alone (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def normalise_url(url: str) -> URL:
    """Parse ``url``; plain PostgreSQL URLs get the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    """Per-connection SQLite settings; the driver leaves transactions to SQLAlchemy.

    ``secure_delete`` overwrites deleted content with zeros, so an erased subject's wrapped key
    and sealed templates do not linger in free pages of the database file.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    """SQLAlchemy's transaction begins: so does SQLite's (the pysqlite recipe), immediate for
    sessions that write."""
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        _private_files(url)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _private_files(url: URL) -> None:
    """The database and its WAL and shared-memory files are the owner's alone (0600), like
    the key file; they are created empty with that mode before SQLite opens them."""
    database = url.database
    if not database or database == ":memory:":
        return
    previous = os.umask(0o077)
    try:
        for suffix in ("", "-wal", "-shm"):
            path = Path(database + suffix)
            path.touch(exist_ok=True)
            path.chmod(0o600)
    finally:
        os.umask(previous)


#: PostgreSQL advisory lock key that serialises migrations ("facekey" in ASCII, as an integer).
_MIGRATION_LOCK: Final = int.from_bytes(b"facekey", "big")


class Database:
    """A database: one SQLAlchemy engine and a session factory.

    Use :meth:`session` for one use case: it commits when the block ends normally and rolls back
    when it raises. Objects stay readable after the block (``expire_on_commit=False``).
    """

    def __init__(self, url: str) -> None:
        self._url = normalise_url(url)
        self._engine = _create_engine(self._url)
        self._writer = self._engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._sessions = sessionmaker(bind=self._writer, expire_on_commit=False)
        self._readers = sessionmaker(bind=self._engine, expire_on_commit=False)

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
        """A session holding one transaction: committed on success, rolled back on error.

        On SQLite it holds the write lock from its start (see the module docstring).
        """
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: one consistent snapshot, never waiting for writers."""
        with self._readers() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Upgrade the schema to the latest Alembic revision.

        Processes that start together (a server and an admin command on a fresh data
        directory, or several machines on one PostgreSQL) migrate one after the other: the
        first holds SQLite's write lock from its BEGIN, or PostgreSQL's advisory lock, and the
        others wait, then find the schema current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._writer.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file and empty it, so deleted data
        (zeroed by ``secure_delete``) leaves the log too. A no-op on PostgreSQL, where
        ``VACUUM`` (run by autovacuum, or by :meth:`vacuum`) reclaims dead rows."""
        if self.dialect == "sqlite":
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def vacuum(self, *tables: str) -> None:
        """PostgreSQL: ``VACUUM`` the tables so deleted rows' space is reclaimed now."""
        if self.dialect != "postgresql":
            return
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in tables:
                connection.execute(text(f'VACUUM "{table}"'))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self._url.render_as_string(hide_password=True)!r})"
