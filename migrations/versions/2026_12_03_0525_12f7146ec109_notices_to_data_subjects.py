"""Notices to data subjects: the templates admins edit (notice_templates; none stored means the
shipped default) and each acknowledgement, extension notice and completion letter produced for a
request (notices), its text sealed like notes, with how it was delivered.

Revision ID: 12f7146ec109
Revises: aeedf2290725
Create Date: 2026-12-03 05:25:46.379183
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "12f7146ec109"
down_revision: str | None = "aeedf2290725"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_templates",
        sa.Column(
            "kind",
            sa.Enum(
                "acknowledgement",
                "extension",
                "completion",
                name="notice_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "subject",
            sa.String(length=200),
            nullable=False,
            comment="Jinja2 (sandboxed): the mail subject",
        ),
        sa.Column(
            "body", sa.Text(), nullable=False, comment="Jinja2 (sandboxed): the plain-text letter"
        ),
        sa.Column(
            "version",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of subject and body: what a notice's audit leaf names",
        ),
        sa.Column(
            "updated_by",
            sa.String(length=64),
            nullable=True,
            comment="user:<id> or api-key:<prefix>",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_notice_templates")),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "acknowledgement",
                "extension",
                "completion",
                name="notice_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "template_version",
            sa.String(length=64),
            nullable=False,
            comment="the template's version (SHA-256) it was rendered from",
        ),
        sa.Column(
            "text_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="AES-256-GCM of the rendered subject and body; NULL once shredded",
        ),
        sa.Column("text_key_id", sa.String(length=32), nullable=True),
        sa.Column(
            "delivery",
            sa.Enum(
                "queued",
                "sent",
                "failed",
                "download_only",
                name="notice_delivery",
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
            nullable=True,
            comment="queued: when the mail worker should try; the sweep publishes it again well after",
        ),
        sa.Column(
            "last_error",
            sa.Text(),
            nullable=True,
            comment="a fixed phrase and the SMTP code; never the address or the text",
        ),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_notices_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    op.create_index(
        "ix_notices_request_id_created_at", "notices", ["request_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_notices_queued_next_attempt_at",
        "notices",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("delivery = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notices_queued_next_attempt_at",
        table_name="notices",
        postgresql_where=sa.text("delivery = 'queued'"),
    )
    op.drop_index("ix_notices_request_id_created_at", table_name="notices")
    op.drop_table("notices")
    op.drop_table("notice_templates")
