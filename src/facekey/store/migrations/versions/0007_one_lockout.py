"""One lockout mechanism: failed liveness sessions are counted in ``failure_counters`` beside
failed checkout step-ups, under kinds of their own.

Liveness lockouts used to be worked out from the sessions of the last three minutes; open
lockouts of that kind are short, so none is carried over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_KINDS = "kind IN ({})"
OLD_KINDS = "'subject', 'device'"
NEW_KINDS = "'subject', 'device', 'liveness-subject', 'liveness-device'"


def upgrade() -> None:
    with op.batch_alter_table("failure_counters") as batch:
        batch.drop_constraint(op.f("ck_failure_counters_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_failure_counters_kind"), _KINDS.format(NEW_KINDS))


def downgrade() -> None:
    counters = sa.table("failure_counters", sa.column("kind", sa.String))
    op.execute(counters.delete().where(counters.c.kind.like("liveness-%")))
    with op.batch_alter_table("failure_counters") as batch:
        batch.drop_constraint(op.f("ck_failure_counters_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_failure_counters_kind"), _KINDS.format(OLD_KINDS))
