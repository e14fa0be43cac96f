"""Liveness sessions: challenges, results, the sealed best-frame template, single use.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

#: Timestamps are stored as UTC (facekey.store.tables.UTCDateTime wraps this type).
TIMESTAMP = sa.DateTime(timezone=True)
TABLE = "liveness_sessions"


def _fk(column: str, referred: str) -> sa.ForeignKeyConstraint:
    """A cascading foreign key named by the naming convention of :mod:`facekey.store.tables`."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{TABLE}_{column}_{referred}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Add the liveness_sessions table and its indexes."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("challenges", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result_evidence", sa.Text(), nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("sealed_best_template", sa.LargeBinary(), nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("mode IN ('challenge', 'passive')", name=op.f(f"ck_{TABLE}_mode")),
        sa.CheckConstraint(
            "status IN ('open', 'live', 'spoof', 'inconclusive', 'used', 'expired')",
            name=op.f(f"ck_{TABLE}_status"),
        ),
        _fk("network_id", "networks"),
        _fk("device_id", "devices"),
        _fk("subject_id", "subjects"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    for columns in (
        ["network_id"],
        ["device_id", "finished_at"],
        ["subject_id", "finished_at"],
        ["status", "expires_at"],
    ):
        op.create_index(op.f(f"ix_{TABLE}_{'_'.join(columns)}"), TABLE, columns)


def downgrade() -> None:
    """Drop the liveness_sessions table (its indexes go with it)."""
    op.drop_table(TABLE)
