"""Web pages: browser sessions, one-time codes (enrolment links, portal codes), failed attempts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

#: Timestamps are stored as UTC (facekey.store.tables.UTCDateTime wraps this type).
TIMESTAMP = sa.DateTime(timezone=True)


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    """A cascading foreign key named by the naming convention of :mod:`facekey.store.tables`."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE",
    )


def _kind(table: str, kinds: tuple[str, ...]) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{kind}'" for kind in kinds)
    return sa.CheckConstraint(f"kind IN ({quoted})", name=op.f(f"ck_{table}_kind"))


_KINDS = "kind IN ({})"
OLD_KINDS = "'subject', 'device', 'liveness-subject', 'liveness-device'"
NEW_KINDS = OLD_KINDS + ", 'web-sign-in-address', 'web-check-address'"


def upgrade() -> None:
    """Add web_sessions and web_codes; the pages' rate limits count in failure_counters."""
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        _kind("web_sessions", ("enrol", "portal", "operator")),
        _fk("web_sessions", "network_id", "networks"),
        _fk("web_sessions", "subject_id", "subjects"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_network_id"), "web_sessions", ["network_id"])
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
    op.create_table(
        "web_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("reusable", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        _kind("web_codes", ("enrol_link", "portal_code")),
        _fk("web_codes", "network_id", "networks"),
        _fk("web_codes", "subject_id", "subjects"),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_web_codes")),
    )
    op.create_index(op.f("ix_web_codes_network_id"), "web_codes", ["network_id"])
    with op.batch_alter_table("failure_counters") as batch:
        batch.drop_constraint(op.f("ck_failure_counters_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_failure_counters_kind"), _KINDS.format(NEW_KINDS))


def downgrade() -> None:
    """Drop the web tables (their indexes go with them) and the pages' counters."""
    counters = sa.table("failure_counters", sa.column("kind", sa.String))
    op.execute(counters.delete().where(counters.c.kind.like("web-%")))
    with op.batch_alter_table("failure_counters") as batch:
        batch.drop_constraint(op.f("ck_failure_counters_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_failure_counters_kind"), _KINDS.format(OLD_KINDS))
    for table in ("web_codes", "web_sessions"):
        op.drop_table(table)
