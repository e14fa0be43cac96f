"""Statements the stores share for writes that may race: insert unless it exists, lock a row.

Inserts of ORM rows that may collide run in a SAVEPOINT and catch the unique violation, so
concurrent duplicates are detected by the database on both backends. The hottest writes (a
signed call's nonce, a heartbeat's status row) use one ``INSERT ... ON CONFLICT`` statement
instead (:func:`insert_ignore`, :func:`upsert`): the same guarantee from the database, without
the savepoint, the flush and the ORM object. Read-modify-write upserts first "touch" the row
with a no-op ``UPDATE``, which row-locks it on PostgreSQL (on SQLite the session's immediate
transaction holds the write lock already), so concurrent writers serialise instead of failing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.dml import Insert

from facekey.store.tables import (
    Base,
)


def insert_new(session: Session, row: Base) -> bool:
    """Insert ``row`` in a savepoint; False (and the row discarded) on an integrity violation."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def insert_ignore(session: Session, model: type[Base], values: Mapping[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING`` of one row; False when a unique key already held it."""
    stmt = _on_conflict(_dialect(session), _table(model), None)
    return session.execute(stmt, values).first() is not None


def upsert(
    session: Session, model: type[Base], values: Mapping[str, Any], *, key: tuple[str, ...]
) -> None:
    """Insert one row, or update every other column of the row with the same ``key`` columns
    (``values`` holds every column)."""
    session.execute(_on_conflict(_dialect(session), _table(model), key), values)


@functools.cache
def _on_conflict(dialect: str, table: Table, key: tuple[str, ...] | None) -> Insert:
    """The statement of :func:`insert_ignore` (``key`` None) or :func:`upsert`, built once:
    the hottest writes then pay for neither building nor the ORM, only for binding values."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if key is None:  # RETURNING says whether it inserted (psycopg's rowcount here is -1)
        first = next(iter(table.primary_key.columns))
        return stmt.on_conflict_do_nothing().returning(first)
    changed = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    return stmt.on_conflict_do_update(index_elements=list(key), set_=changed)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def touch(
    session: Session, column: InstrumentedAttribute[Any], *where: ColumnElement[bool]
) -> bool:
    """No-op ``UPDATE`` of the rows matching ``where``: lock them; True when there is one."""
    stmt = (
        update(column.class_)
        .where(*where)
        .values({column.key: column})
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount) > 0  # type: ignore[attr-defined]


def rowcount(session: Session, stmt: Any) -> int:
    """Execute a DML statement; the number of rows it matched."""
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
