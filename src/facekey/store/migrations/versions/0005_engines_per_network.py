"""Engines per network: the engine its galleries use, the engine it migrates to, whether it
keeps sealed enrolment images for re-templating; and the template sources of re-templating.

Networks that exist already keep the engine they were built with, dlib-resnet-v1.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_SOURCES = "source IN ({})"
OLD_SOURCES = "'enrolment', 'added', 'liveness'"
#: Re-templating adds templates made at a checkout or verification, or from retained images.
NEW_SOURCES = "'enrolment', 'added', 'liveness', 'retemplated', 'retained'"


def upgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.add_column(
            sa.Column("engine", sa.String(100), nullable=False, server_default="dlib-resnet-v1")
        )
        batch.add_column(sa.Column("migration_engine", sa.String(100), nullable=True))
        batch.add_column(
            sa.Column("retain_images", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("templates") as batch:
        batch.drop_constraint(op.f("ck_templates_source"), type_="check")
        batch.create_check_constraint(op.f("ck_templates_source"), _SOURCES.format(NEW_SOURCES))


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_constraint(op.f("ck_templates_source"), type_="check")
        batch.create_check_constraint(op.f("ck_templates_source"), _SOURCES.format(OLD_SOURCES))
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("retain_images")
        batch.drop_column("migration_engine")
        batch.drop_column("engine")
