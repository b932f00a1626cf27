"""integrations: webhook sources and deliveries, callbacks, processor key

Revision ID: 0b8a308ee2a5
Revises: 6bfcb0b87055
Create Date: 2026-11-25 23:00:00.965175
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0b8a308ee2a5"
down_revision: str | None = "6bfcb0b87055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("leaf_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_integration_cursors")),
    )
    op.create_table(
        "processor_keys",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("private_key_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_keys")),
    )
    op.create_table(
        "webhook_sources",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False, comment="slug in the webhook URL"),
        sa.Column(
            "system",
            sa.Enum(
                "api",
                "ui",
                "jira",
                "zendesk",
                "servicenow",
                "standard_webhooks",
                "opendsr",
                name="webhook_system",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "scheme",
            sa.Enum(
                "jira",
                "zendesk",
                "standard_webhooks",
                "shared_secret",
                name="webhook_scheme",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "mapping",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="overrides of the system's mapping preset",
        ),
        sa.Column(
            "org", sa.String(length=64), nullable=True, comment="org name; NULL: the default"
        ),
        sa.Column(
            "api_key_id",
            sa.Uuid(),
            nullable=True,
            comment="requests are attributed to this key (its scope)",
        ),
        sa.Column(
            "comment_base_url",
            sa.String(length=2048),
            nullable=True,
            comment="REST API base of the ticket system, for comment-back",
        ),
        sa.Column("comment_user", sa.String(length=255), nullable=True),
        sa.Column(
            "comment_token_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="API token for comment-back, AES-256-GCM under `comment_token_key_id`",
        ),
        sa.Column("comment_token_key_id", sa.String(length=32), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_webhook_sources_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_webhook_sources_name")),
    )
    op.create_table(
        "callback_subscriptions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "standard_webhooks",
                "opendsr",
                "ticket_comment",
                name="callback_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("webhook_source_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column(
            "secret_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="Standard Webhooks signing secret, sealed; NULL for OpenDSR",
        ),
        sa.Column("secret_key_id", sa.String(length=32), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_callback_subscriptions_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_callback_subscriptions_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_source_id"],
            ["webhook_sources.id"],
            name=op.f("fk_callback_subscriptions_webhook_source_id_webhook_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_subscriptions")),
    )
    op.create_index(
        op.f("ix_callback_subscriptions_api_key_id"),
        "callback_subscriptions",
        ["api_key_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_callback_subscriptions_request_id"),
        "callback_subscriptions",
        ["request_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_callback_subscriptions_webhook_source_id"),
        "callback_subscriptions",
        ["webhook_source_id"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column(
            "delivery_id", sa.String(length=255), nullable=False, comment="the sender's delivery id"
        ),
        sa.Column(
            "digest",
            sa.LargeBinary(length=32),
            nullable=False,
            comment="SHA-256 of the signed bytes: catches a replay under a new id",
        ),
        sa.Column(
            "outcome",
            sa.Enum(
                "created",
                "ignored",
                name="delivery_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason", sa.Text(), nullable=True, comment="why it was ignored; no personal data"
        ),
        sa.Column("ticket_id", sa.String(length=255), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_webhook_deliveries_request_id_erasure_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["webhook_sources.id"],
            name=op.f("fk_webhook_deliveries_source_id_webhook_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "source_id", "delivery_id", name="uq_webhook_deliveries_source_delivery"
        ),
        sa.UniqueConstraint("source_id", "digest", name="uq_webhook_deliveries_source_digest"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_request_id"), "webhook_deliveries", ["request_id"], unique=False
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column(
            "ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="HMAC key sealed with the Vault (an HMAC check needs the key back)",
        ),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column(
            "secret_hash",
            sa.LargeBinary(length=32),
            nullable=True,
            comment="SHA-256 of a shared secret (compared, never needed back)",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="a rotated-out secret stops verifying after this",
        ),
        sa.CheckConstraint(
            "(ciphertext IS NULL) <> (secret_hash IS NULL)",
            name=op.f("ck_webhook_secrets_sealed_xor_hashed"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["webhook_sources.id"],
            name=op.f("fk_webhook_secrets_source_id_webhook_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_secrets")),
    )
    op.create_index(
        op.f("ix_webhook_secrets_source_id"), "webhook_secrets", ["source_id"], unique=False
    )
    op.create_table(
        "callback_deliveries",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "standard_webhooks",
                "opendsr",
                "ticket_comment",
                name="callback_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Uuid(), nullable=True),
        sa.Column("webhook_source_id", sa.Uuid(), nullable=True, comment="ticket comments"),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("leaf_id", sa.BigInteger(), nullable=False, comment="the audit leaf it reports"),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column(
            "body",
            sa.Text(),
            nullable=False,
            comment="the exact bytes sent on every attempt; no PII",
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "dead",
                name="callback_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_error",
            sa.String(length=255),
            nullable=True,
            comment="HTTP status or error class; never a response body",
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_callback_deliveries_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["callback_subscriptions.id"],
            name=op.f("fk_callback_deliveries_subscription_id_callback_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_source_id"],
            ["webhook_sources.id"],
            name=op.f("fk_callback_deliveries_webhook_source_id_webhook_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_deliveries")),
        sa.UniqueConstraint(
            "subscription_id", "leaf_id", name="uq_callback_deliveries_subscription_leaf"
        ),
        sa.UniqueConstraint(
            "webhook_source_id", "leaf_id", name="uq_callback_deliveries_source_leaf"
        ),
    )
    op.create_index(
        "ix_callback_deliveries_due",
        "callback_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_callback_deliveries_request_id"),
        "callback_deliveries",
        ["request_id"],
        unique=False,
    )
    op.create_index(
        "ix_callback_deliveries_status", "callback_deliveries", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_callback_deliveries_status", table_name="callback_deliveries")
    op.drop_index(op.f("ix_callback_deliveries_request_id"), table_name="callback_deliveries")
    op.drop_index(
        "ix_callback_deliveries_due",
        table_name="callback_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("callback_deliveries")
    op.drop_index(op.f("ix_webhook_secrets_source_id"), table_name="webhook_secrets")
    op.drop_table("webhook_secrets")
    op.drop_index(op.f("ix_webhook_deliveries_request_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(
        op.f("ix_callback_subscriptions_webhook_source_id"), table_name="callback_subscriptions"
    )
    op.drop_index(op.f("ix_callback_subscriptions_request_id"), table_name="callback_subscriptions")
    op.drop_index(op.f("ix_callback_subscriptions_api_key_id"), table_name="callback_subscriptions")
    op.drop_table("callback_subscriptions")
    op.drop_table("webhook_sources")
    op.drop_table("processor_keys")
    op.drop_table("integration_cursors")
