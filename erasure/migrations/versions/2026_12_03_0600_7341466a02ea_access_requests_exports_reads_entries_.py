"""access requests: exports, reads, entries calls, conversation activity

Access requests (Art. 15 / right to know) with their sealed identifiers, the conversations they
read (sealed until the export is built), the entries calls spent per execution user (the 90 per
minute window is counted from the table), and the records an entries read made active (a delete
reaching one waits until then instead of getting 412).

Revision ID: 7341466a02ea
Revises: c4f1a9e2b7d3
Create Date: 2026-12-03 05:27:17.099774
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7341466a02ea"
down_revision: str | None = "c4f1a9e2b7d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "api",
                "ui",
                "jira",
                "zendesk",
                "servicenow",
                "standard_webhooks",
                "opendsr",
                name="source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reference_system", sa.String(length=64), nullable=True),
        sa.Column("reference_id", sa.String(length=255), nullable=True),
        sa.Column("reference_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "regulation",
            sa.Enum(
                "gdpr",
                "uk_gdpr",
                "ccpa",
                "lgpd",
                name="regulation",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "retrieving",
                "ready",
                "completed_no_data",
                "failed",
                "destroyed",
                name="access_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("outcome", sa.Text(), nullable=True, comment="a fixed phrase; no personal data"),
        sa.Column("notes_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("notes_key_id", sa.String(length=32), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="retrieval waits until then (entries budget, erasure)",
        ),
        sa.Column("end_users", sa.Integer(), server_default="0", nullable=False),
        sa.Column("conversations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("entries", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "export_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="the export (JSON and HTML), AES-256-GCM; NULL once destroyed",
        ),
        sa.Column("export_key_id", sa.String(length=32), nullable=True),
        sa.Column(
            "export_sha256",
            sa.String(length=64),
            nullable=True,
            comment="SHA-256 of the JSON export, as the audit log records it",
        ),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the export's retention date: destroyed then",
        ),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_access_requests_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_access_requests_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    op.create_index(op.f("ix_access_requests_due_at"), "access_requests", ["due_at"], unique=False)
    op.create_index(op.f("ix_access_requests_org_id"), "access_requests", ["org_id"], unique=False)
    op.create_index(
        "ix_access_requests_status_next",
        "access_requests",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "conversation_activity",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("salesforce_id", sa.String(length=18), nullable=False),
        sa.Column("active_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_conversation_activity_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "salesforce_id", name=op.f("pk_conversation_activity")),
    )
    op.create_table(
        "access_identifiers",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "phone",
                "email",
                "messaging_platform_key",
                "contact_id",
                "messaging_end_user_id",
                name="identifier_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("blind_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name=op.f("fk_access_identifiers_request_id_access_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_identifiers")),
    )
    op.create_index(
        op.f("ix_access_identifiers_blind_index"),
        "access_identifiers",
        ["blind_index"],
        unique=False,
    )
    op.create_index(
        op.f("ix_access_identifiers_request_id"), "access_identifiers", ["request_id"], unique=False
    )
    op.create_table(
        "access_reads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("end_user_id", sa.String(length=18), nullable=True),
        sa.Column("conversation_id", sa.String(length=18), nullable=True),
        sa.Column(
            "conversation_identifier",
            sa.String(length=64),
            nullable=True,
            comment="the ConversationIdentifier (a UUID) entries are read by",
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "read",
                "erased",
                name="access_read_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("entries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("entries_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name=op.f("fk_access_reads_request_id_access_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_reads")),
        sa.UniqueConstraint("request_id", "conversation_id", name="access_read_once"),
    )
    op.create_index(
        op.f("ix_access_reads_request_id"), "access_reads", ["request_id"], unique=False
    )
    op.create_table(
        "entry_calls",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_entry_calls_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_calls")),
    )
    op.create_index(
        "ix_entry_calls_credential_sent_at",
        "entry_calls",
        ["credential_id", "sent_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_entry_calls_credential_sent_at", table_name="entry_calls")
    op.drop_table("entry_calls")
    op.drop_index(op.f("ix_access_reads_request_id"), table_name="access_reads")
    op.drop_table("access_reads")
    op.drop_index(op.f("ix_access_identifiers_request_id"), table_name="access_identifiers")
    op.drop_index(op.f("ix_access_identifiers_blind_index"), table_name="access_identifiers")
    op.drop_table("access_identifiers")
    op.drop_table("conversation_activity")
    op.drop_index("ix_access_requests_status_next", table_name="access_requests")
    op.drop_index(op.f("ix_access_requests_org_id"), table_name="access_requests")
    op.drop_index(op.f("ix_access_requests_due_at"), table_name="access_requests")
    op.drop_table("access_requests")
