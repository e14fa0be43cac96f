"""Initial schema: tenants, subjects, consents, templates, gallery change log, audit, receipts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: Timestamps are stored as UTC (facekey.store.tables.UTCDateTime wraps this type).
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "networks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("transform_version", sa.Integer(), nullable=False),
        sa.Column("wrapped_transform_secret", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_networks")),
        sa.UniqueConstraint("name", name=op.f("uq_networks_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_api_keys_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_network_id"), "api_keys", ["network_id"])

    op.create_table(
        "audit_events",
        sa.Column("sequence", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_pseudonym", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_audit_events_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_audit_events_network_id_sequence"), "audit_events", ["network_id", "sequence"]
    )
    op.create_index(
        op.f("ix_audit_events_network_id_subject_pseudonym"),
        "audit_events",
        ["network_id", "subject_pseudonym"],
    )

    op.create_table(
        "erasure_receipts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("subject_pseudonym", sa.String(length=32), nullable=False),
        sa.Column("erased_at", TIMESTAMP, nullable=False),
        sa.Column("templates_erased", sa.Integer(), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("audit_sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_erasure_receipts_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_receipts")),
    )
    op.create_index(op.f("ix_erasure_receipts_network_id"), "erasure_receipts", ["network_id"])
    op.create_index(
        op.f("ix_erasure_receipts_subject_pseudonym"), "erasure_receipts", ["subject_pseudonym"]
    )

    op.create_table(
        "gallery_changes",
        sa.Column("sequence", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("engine_key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "kind IN ('add', 'remove_subject', 'remove_template')",
            name=op.f("ck_gallery_changes_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_gallery_changes_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_gallery_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_gallery_changes_network_id_engine_key_sequence"),
        "gallery_changes",
        ["network_id", "engine_key", "sequence"],
    )

    op.create_table(
        "merchants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_merchants_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
    )
    op.create_index(op.f("ix_merchants_network_id"), "merchants", ["network_id"])

    op.create_table(
        "subjects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("erased_at", TIMESTAMP, nullable=True),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=100), nullable=True),
        sa.Column("sealed_phone", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_payment_token", sa.LargeBinary(), nullable=True),
        sa.Column("phone_bucket", sa.String(length=128), nullable=True),
        sa.CheckConstraint("status IN ('active', 'erased')", name=op.f("ck_subjects_status")),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_subjects_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
        sa.UniqueConstraint(
            "network_id", "external_ref", name=op.f("uq_subjects_network_id_external_ref")
        ),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_subjects_pseudonym")),
    )
    op.create_index(op.f("ix_subjects_network_id"), "subjects", ["network_id"])
    op.create_index(
        op.f("ix_subjects_network_id_phone_bucket"), "subjects", ["network_id", "phone_bucket"]
    )

    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("terms_version", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("granted_at", TIMESTAMP, nullable=False),
        sa.Column("withdrawn_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_consents_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_subject_id_purpose"), "consents", ["subject_id", "purpose"])

    op.create_table(
        "retained_images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("sealed_image", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_retained_images_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retained_images")),
    )
    op.create_index(op.f("ix_retained_images_subject_id"), "retained_images", ["subject_id"])

    op.create_table(
        "stores",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_stores_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
    )
    op.create_index(op.f("ix_stores_merchant_id"), "stores", ["merchant_id"])

    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("engine_id", sa.String(length=100), nullable=False),
        sa.Column("engine_version", sa.String(length=50), nullable=False),
        sa.Column("sealed_vector", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "source IN ('enrolment', 'added', 'liveness')", name=op.f("ck_templates_source")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_templates_network_id_networks")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_templates_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_templates_network_id_engine_id_engine_version"),
        "templates",
        ["network_id", "engine_id", "engine_version"],
    )
    op.create_index(op.f("ix_templates_subject_id"), "templates", ["subject_id"])

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("wrapped_secret", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_devices_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_devices_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_network_id"), "devices", ["network_id"])
    op.create_index(op.f("ix_devices_store_id"), "devices", ["store_id"])


def downgrade() -> None:
    """Drop every table (indexes go with them)."""
    op.drop_table("devices")
    op.drop_table("templates")
    op.drop_table("stores")
    op.drop_table("retained_images")
    op.drop_table("consents")
    op.drop_table("subjects")
    op.drop_table("merchants")
    op.drop_table("gallery_changes")
    op.drop_table("erasure_receipts")
    op.drop_table("audit_events")
    op.drop_table("api_keys")
    op.drop_table("networks")
