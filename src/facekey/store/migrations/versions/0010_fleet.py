"""The fleet: one-time enrolment tokens, releases (desired configuration) and pins, each
device's last heartbeat, kiosks' hourly screening counts, and API keys issued to a device.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

#: Timestamps are stored as UTC (facekey.store.tables.UTCDateTime wraps this type).
TIMESTAMP = sa.DateTime(timezone=True)


def _fk(table: str, column: str, referred: str, ondelete: str = "CASCADE") -> sa.Constraint:
    """A foreign key named by the naming convention of :mod:`facekey.store.tables`."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete=ondelete,
    )


def _pk(table: str, *columns: str) -> sa.Constraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    """Add the fleet tables and ``api_keys.device_id``."""
    _enrolment_tokens()
    _releases()
    _status()
    _screening_counts()
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("device_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_device_id_devices"),
            "devices",
            ["device_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_api_keys_device_id"), ["device_id"])


def _enrolment_tokens() -> None:
    table = "enrolment_tokens"
    op.create_table(
        table,
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        _fk(table, "network_id", "networks"),
        _fk(table, "store_id", "stores"),
        _fk(table, "device_id", "devices", "SET NULL"),
        _pk(table, "id"),
    )
    _index(table, "network_id")


def _releases() -> None:
    op.create_table(
        "fleet_releases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=True),
        sa.Column("software_version", sa.String(length=64), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("rollout_percent", sa.Float(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("fleet_releases", "network_id", "networks"),
        _fk("fleet_releases", "store_id", "stores"),
        _pk("fleet_releases", "id"),
    )
    _index("fleet_releases", "network_id", "store_id", "created_at")
    op.create_table(
        "device_pins",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=False),
        sa.Column("pinned_at", TIMESTAMP, nullable=False),
        _fk("device_pins", "device_id", "devices"),
        _fk("device_pins", "release_id", "fleet_releases"),
        _pk("device_pins", "device_id"),
    )


def _status() -> None:
    table = "device_status"
    op.create_table(
        table,
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("software_version", sa.String(length=64), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("uptime_s", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("camera", sa.String(length=16), nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "camera IN ('ok', 'missing', 'error', 'none')", name=op.f(f"ck_{table}_camera")
        ),
        _fk(table, "device_id", "devices"),
        _fk(table, "network_id", "networks"),
        _pk(table, "device_id"),
    )
    _index(table, "network_id", "last_seen_at")


def _screening_counts() -> None:
    table = "screening_counts"
    op.create_table(
        table,
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("hour", TIMESTAMP, nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("screened", sa.Integer(), nullable=False),
        sa.Column("referred", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        _fk(table, "device_id", "devices"),
        _fk(table, "network_id", "networks"),
        _pk(table, "device_id", "hour"),
    )
    _index(table, "network_id", "hour")


def downgrade() -> None:
    """Drop the fleet tables and ``api_keys.device_id``."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(op.f("ix_api_keys_device_id"))
        batch.drop_constraint(op.f("fk_api_keys_device_id_devices"), type_="foreignkey")
        batch.drop_column("device_id")
    for table in (
        "screening_counts",
        "device_status",
        "device_pins",
        "fleet_releases",
        "enrolment_tokens",
    ):
        op.drop_table(table)
