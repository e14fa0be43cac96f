"""Migrations, schema parity with the models, database handle behaviour."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from facekey.store.database import Database, default_sqlite_url, normalise_url
from facekey.store.tables import metadata
from facekey.store.tenants import create_network, get_network
from postgres_server import find_bin_dir


def test_processes_starting_together_migrate_one_after_the_other(fresh_database_url: str) -> None:
    # A server and an admin command started at once on a fresh data directory: each migrates
    # on its own connection. Without a lock taken at BEGIN, one failed with "database is
    # locked" (SQLite) or a duplicate table (PostgreSQL).
    handles = [Database(fresh_database_url) for _ in range(4)]
    start = threading.Barrier(len(handles))

    def migrate(db: Database) -> None:
        start.wait()
        db.migrate()

    try:
        with ThreadPoolExecutor(len(handles)) as pool:
            for done in [pool.submit(migrate, db) for db in handles]:
                done.result()
        with handles[0].engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for db in handles:
            db.dispose()


def test_migrated_schema_matches_the_models(fresh_database_url: str) -> None:
    db = Database(fresh_database_url)
    try:
        db.migrate()
        db.migrate()  # idempotent
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
            tables = set(inspect(connection).get_table_names())
        assert diffs == []
        assert tables == set(metadata.tables) | {"alembic_version"}
    finally:
        db.dispose()


def test_timestamps_come_back_aware_utc(database: Database) -> None:
    local = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with database.session() as session:
        network = create_network(
            session,
            name="tz-network-" + local.isoformat(),
            wrapped_transform_secret=b"x",
            kek_id="k",
            engine="fake",
        )
        network.created_at = local
    with database.session() as session:
        session.expire_all()
        loaded = get_network(session, network_id=network.id)
        assert loaded is not None
        assert loaded.created_at.tzinfo is UTC
        assert loaded.created_at == local
        assert loaded.created_at.hour == 10


def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), database.session() as session:
        network = create_network(
            session, name="naive", wrapped_transform_secret=b"x", kek_id="k", engine="fake"
        )
        network.created_at = datetime(2024, 1, 1)
        session.flush()


def test_session_rolls_back_on_error(database: Database) -> None:
    name = "rolled-back-network"
    with pytest.raises(RuntimeError), database.session() as session:
        create_network(session, name=name, wrapped_transform_secret=b"x", kek_id="k", engine="fake")
        raise RuntimeError("boom")
    with database.session() as session:
        count = session.execute(
            text("SELECT count(*) FROM networks WHERE name = :name"), {"name": name}
        ).scalar_one()
    assert count == 0


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path / "var" / "data")
    assert url == f"sqlite:///{tmp_path.as_posix()}/var/data/facekey.db"
    assert (tmp_path / "var" / "data").is_dir()
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        db.dispose()


def test_postgres_urls_get_the_psycopg_driver() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_harness_picks_the_highest_postgres_version(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("initdb", "pg_ctl"):
            (bin_dir / tool).touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # client-only install: no server tools
    assert find_bin_dir(tmp_path) == tmp_path / "15" / "bin"
    assert find_bin_dir(tmp_path / "missing") is None
