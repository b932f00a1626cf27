"""bulk uploads: each confirmed console CSV upload and the requests it created

So an officer can follow an upload's requests after confirming it (received, in progress,
completed, failed). Only ids are kept: never the file, a row or an identifier.

Revision ID: b5d2e8f4a6c1
Revises: e3c8d5a1f0b2
Create Date: 2026-12-03 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5d2e8f4a6c1"
down_revision: str | None = "e3c8d5a1f0b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_uploads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True, comment="who confirmed it"),
        sa.Column("rows", sa.Integer(), nullable=False, comment="valid rows in the confirmed file"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_bulk_uploads_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_uploads")),
    )
    op.create_index(op.f("ix_bulk_uploads_user_id"), "bulk_uploads", ["user_id"], unique=False)
    op.create_table(
        "bulk_upload_requests",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_bulk_upload_requests_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["bulk_uploads.id"],
            name=op.f("fk_bulk_upload_requests_upload_id_bulk_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "request_id", name=op.f("pk_bulk_upload_requests")),
    )
    op.create_index(
        op.f("ix_bulk_upload_requests_request_id"),
        "bulk_upload_requests",
        ["request_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bulk_upload_requests_request_id"), table_name="bulk_upload_requests")
    op.drop_table("bulk_upload_requests")
    op.drop_index(op.f("ix_bulk_uploads_user_id"), table_name="bulk_uploads")
    op.drop_table("bulk_uploads")
