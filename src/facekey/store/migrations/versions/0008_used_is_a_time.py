"""A liveness session is used when it has ``used_at``: the status ``used`` beside it said the
same thing twice. Used sessions keep the result they had (``live``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_STATUS = "status IN ({})"
OLD_STATUSES = "'open', 'live', 'spoof', 'inconclusive', 'used', 'expired'"
NEW_STATUSES = "'open', 'live', 'spoof', 'inconclusive', 'expired'"
_sessions = sa.table(
    "liveness_sessions",
    sa.column("status", sa.String),
    sa.column("used_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.execute(_sessions.update().where(_sessions.c.status == "used").values(status="live"))
    with op.batch_alter_table("liveness_sessions") as batch:
        batch.drop_constraint(op.f("ck_liveness_sessions_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_liveness_sessions_status"), _STATUS.format(NEW_STATUSES)
        )


def downgrade() -> None:
    with op.batch_alter_table("liveness_sessions") as batch:
        batch.drop_constraint(op.f("ck_liveness_sessions_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_liveness_sessions_status"), _STATUS.format(OLD_STATUSES)
        )
    op.execute(_sessions.update().where(_sessions.c.used_at.isnot(None)).values(status="used"))
