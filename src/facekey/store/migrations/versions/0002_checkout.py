"""Checkout: request nonces, the authorization ledger, failure counters, probe fingerprints,
merchant exclusions, preferences; device names and disabling; subjects' PIN hash.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: Timestamps are stored as UTC (facekey.store.tables.UTCDateTime wraps this type).
TIMESTAMP = sa.DateTime(timezone=True)


def _fk(table: str, column: str, referred: str, *, cascade: bool) -> sa.ForeignKeyConstraint:
    """A foreign key named by the naming convention of :mod:`facekey.store.tables`."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE" if cascade else None,
    )


def _add_columns() -> None:
    op.add_column("devices", sa.Column("name", sa.String(length=200), nullable=True))
    op.add_column("devices", sa.Column("disabled_at", TIMESTAMP, nullable=True))
    op.add_column("subjects", sa.Column("pin_hash", sa.String(length=200), nullable=True))


def _create_request_nonces() -> None:
    op.create_table(
        "request_nonces",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
        _fk("request_nonces", "device_id", "devices", cascade=True),
        sa.PrimaryKeyConstraint("device_id", "nonce", name=op.f("pk_request_nonces")),
    )
    op.create_index(op.f("ix_request_nonces_seen_at"), "request_nonces", ["seen_at"])


def _create_authorizations() -> None:
    op.create_table(
        "authorizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("customer_pseudonym", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.String(length=50), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("step_up_method", sa.String(length=20), nullable=True),
        sa.Column("step_up_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "status IN ('final', 'pending_step_up')", name=op.f("ck_authorizations_status")
        ),
        sa.CheckConstraint(
            "decision IN ('approved', 'step_up', 'declined')",
            name=op.f("ck_authorizations_decision"),
        ),
        _fk("authorizations", "network_id", "networks", cascade=False),
        _fk("authorizations", "merchant_id", "merchants", cascade=False),
        _fk("authorizations", "store_id", "stores", cascade=False),
        _fk("authorizations", "device_id", "devices", cascade=False),
        _fk("authorizations", "subject_id", "subjects", cascade=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorizations")),
        sa.UniqueConstraint(
            "device_id",
            "idempotency_key",
            name=op.f("uq_authorizations_device_id_idempotency_key"),
        ),
    )
    for columns in (
        ["merchant_id", "created_at"],
        ["subject_id", "created_at"],
        ["network_id", "created_at"],
        ["device_id", "created_at"],
    ):
        op.create_index(op.f(f"ix_authorizations_{'_'.join(columns)}"), "authorizations", columns)


def _create_failure_counters_and_probes() -> None:
    op.create_table(
        "failure_counters",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("locked_until", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("kind IN ('subject', 'device')", name=op.f("ck_failure_counters_kind")),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_failure_counters")),
    )
    op.create_table(
        "probe_fingerprints",
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
        _fk("probe_fingerprints", "network_id", "networks", cascade=True),
        sa.PrimaryKeyConstraint("network_id", "sha256", name=op.f("pk_probe_fingerprints")),
    )
    op.create_index(op.f("ix_probe_fingerprints_seen_at"), "probe_fingerprints", ["seen_at"])


def _create_personalization() -> None:
    op.create_table(
        "merchant_exclusions",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("merchant_exclusions", "subject_id", "subjects", cascade=True),
        _fk("merchant_exclusions", "merchant_id", "merchants", cascade=True),
        sa.PrimaryKeyConstraint("subject_id", "merchant_id", name=op.f("pk_merchant_exclusions")),
    )
    op.create_table(
        "preferences",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("sealed_payload", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _fk("preferences", "subject_id", "subjects", cascade=True),
        _fk("preferences", "merchant_id", "merchants", cascade=True),
        sa.PrimaryKeyConstraint("subject_id", "merchant_id", name=op.f("pk_preferences")),
    )


def upgrade() -> None:
    """Add the checkout tables and columns."""
    _add_columns()
    _create_request_nonces()
    _create_authorizations()
    _create_failure_counters_and_probes()
    _create_personalization()


def downgrade() -> None:
    """Drop the checkout tables (indexes go with them) and columns."""
    for table in (
        "preferences",
        "merchant_exclusions",
        "probe_fingerprints",
        "failure_counters",
        "authorizations",
        "request_nonces",
    ):
        op.drop_table(table)
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("pin_hash")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("name")
