"""console users: people who sign in to the web console (argon2id hashes, lockout)

Revision ID: a81e61c38435
Revises: 0b8a308ee2a5
Create Date: 2026-11-25 23:01:41.793238
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a81e61c38435"
down_revision: str | None = "0b8a308ee2a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "email",
            sa.String(length=320),
            nullable=False,
            comment="sign-in name, lower case (staff, not a data subject)",
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "officer",
                "approver",
                "auditor",
                "integration",
                "admin",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "password_hash", sa.String(length=255), nullable=False, comment="argon2id PHC string"
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "session_version",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="bumped on sign-out: old cookies stop working",
        ),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )


def downgrade() -> None:
    op.drop_table("users")
