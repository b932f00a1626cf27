"""heartbeats of workers and beat: what /readyz reads to know they are alive

Revision ID: 05e9b458cca7
Revises: 07650a7e6101
Create Date: 2026-12-02 14:58:49.728095
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "05e9b458cca7"
down_revision: str | None = "07650a7e6101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A handful of rows (one per worker queue and beat per process), rewritten every few seconds.
    op.create_table(
        "heartbeats",
        sa.Column(
            "component",
            sa.String(length=64),
            nullable=False,
            comment="`worker:<queue>` for each queue consumed, or `beat`",
        ),
        sa.Column(
            "instance",
            sa.String(length=255),
            nullable=False,
            comment="the process: Celery node name, or host:pid",
        ),
        sa.Column(
            "beat_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("component", "instance", name=op.f("pk_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
