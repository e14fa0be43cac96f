"""Each fact stored once: a device is disabled when it has ``disabled_at`` (the ``enabled``
flag beside it is dropped), and a subject's erasure time is its receipt's (``erased_at`` on
the subject beside its ``status`` is dropped).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    devices = sa.table(
        "devices",
        sa.column("enabled", sa.Boolean),
        sa.column("disabled_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    # A device disabled before disabled_at existed keeps its state.
    op.execute(
        devices.update()
        .where(devices.c.enabled.is_(False), devices.c.disabled_at.is_(None))
        .values(disabled_at=devices.c.created_at)
    )
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("enabled")
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("erased_at")


def downgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    devices = sa.table(
        "devices", sa.column("enabled", sa.Boolean), sa.column("disabled_at", sa.DateTime)
    )
    op.execute(devices.update().where(devices.c.disabled_at.isnot(None)).values(enabled=False))
