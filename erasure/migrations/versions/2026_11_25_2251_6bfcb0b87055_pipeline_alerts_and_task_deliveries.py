"""The pipeline's alerts (for a person) and task deliveries (bounds poison messages).

Revision ID: 6bfcb0b87055
Revises: ab293603bf69
Create Date: 2026-11-25 22:51:18.868703
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6bfcb0b87055"
down_revision: str | None = "ab293603bf69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_deliveries",
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=128), nullable=False),
        sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_deliveries")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_alerts_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_alerts_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ix_alerts_open",
        "alerts",
        ["kind"],
        unique=False,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index(op.f("ix_alerts_request_id"), "alerts", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_request_id"), table_name="alerts")
    op.drop_index(
        "ix_alerts_open", table_name="alerts", postgresql_where=sa.text("resolved_at IS NULL")
    )
    op.drop_table("alerts")
    op.drop_table("task_deliveries")
