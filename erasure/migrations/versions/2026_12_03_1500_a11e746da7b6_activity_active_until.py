"""activity_active_until: conversation_activity indexed by the end of each record's activity

The scheduler reads the records an access read made active (active_until in the future) once
per dispatch, as one set (erasure.pipeline.scheduler._made_active). The table keeps a row for
every record any access request ever read, so without this index that read goes through all of
them; with it, through the active ones only.

Revision ID: a11e746da7b6
Revises: b7e2c4d9a613
Create Date: 2026-12-03 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a11e746da7b6"
down_revision: str | None = "b7e2c4d9a613"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_conversation_activity_active_until", "conversation_activity", ["active_until"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_activity_active_until", table_name="conversation_activity")
