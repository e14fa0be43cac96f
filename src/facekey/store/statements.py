"""Statements the stores share for writes that may race: insert unless it exists, lock a row.

Inserts that may collide run in a SAVEPOINT and catch the unique violation, so concurrent
duplicates are detected by the database on both backends. Read-modify-write upserts first
"touch" the row with a no-op ``UPDATE``, which row-locks it on PostgreSQL (on SQLite the
session's immediate transaction holds the write lock already), so concurrent writers serialise
instead of failing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

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
