"""conversation-level erasure: a request's scope, and conversation ids among its identifiers

A request either erases its subject's Messaging end users (`subject`, as before) or only
conversations, the end users kept (`conversations`). Conversation ids given at intake are stored
like the other identifiers, sealed, so `subject_identifiers.kind` gets a wider CHECK
(erasure.db.str_enum: a VARCHAR with a named CHECK listing the allowed values).

Revision ID: e3c8d5a1f0b2
Revises: 7341466a02ea
Create Date: 2026-12-03 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3c8d5a1f0b2"
down_revision: str | None = "7341466a02ea"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("phone", "email", "messaging_platform_key", "contact_id", "messaging_end_user_id")
AFTER = (*BEFORE, "conversation_id")
CHECK = "ck_subject_identifiers_identifier_kind"


def _recreate(values: Sequence[str]) -> None:
    allowed = ", ".join(f"'{v}'" for v in values)
    op.execute(f"ALTER TABLE subject_identifiers DROP CONSTRAINT IF EXISTS {CHECK}")
    op.execute(
        f"ALTER TABLE subject_identifiers ADD CONSTRAINT {CHECK} CHECK (kind IN ({allowed}))"
    )


def upgrade() -> None:
    op.add_column(
        "erasure_requests",
        sa.Column(
            "scope",
            sa.Enum(
                "subject",
                "conversations",
                name="erasure_scope",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="subject",
            nullable=False,
        ),
    )
    _recreate(AFTER)


def downgrade() -> None:
    # Conversation ids mean nothing to the older code: they go with the scope.
    op.execute("DELETE FROM subject_identifiers WHERE kind = 'conversation_id'")
    _recreate(BEFORE)
    op.drop_column("erasure_requests", "scope")
