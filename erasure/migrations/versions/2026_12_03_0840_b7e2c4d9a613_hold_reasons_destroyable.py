"""hold reasons can be destroyed at retention: legal_holds.reason_ciphertext and reason_key_id
become nullable

A hold's reason is free text that may name people. Retention destroys it a retention period after
the hold ended (`hold.shredded` leaf), as it destroys a request's notes; the hold itself, its
pseudonym and its leaves stay.

Revision ID: b7e2c4d9a613
Revises: 5f2a9c7e1d40
Create Date: 2026-12-03 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e2c4d9a613"
down_revision: str | None = "5f2a9c7e1d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_COMMENT = "AES-256-GCM, bound to the hold's id; never stored in plain text"
NEW_COMMENT = OLD_COMMENT + "; NULL once destroyed at retention"


def upgrade() -> None:
    op.alter_column(
        "legal_holds",
        "reason_ciphertext",
        existing_type=sa.LargeBinary(),
        nullable=True,
        comment=NEW_COMMENT,
        existing_comment=OLD_COMMENT,
    )
    op.alter_column("legal_holds", "reason_key_id", existing_type=sa.String(32), nullable=True)


def downgrade() -> None:
    # A destroyed reason cannot come back, and the older schema requires one: refuse rather than
    # invent a ciphertext the older code would fail to open.
    destroyed = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM legal_holds WHERE reason_ciphertext IS NULL")
    )
    if destroyed:
        raise RuntimeError(
            f"{destroyed} legal hold reasons were destroyed at retention; "
            "the previous schema cannot hold them"
        )
    op.alter_column("legal_holds", "reason_key_id", existing_type=sa.String(32), nullable=False)
    op.alter_column(
        "legal_holds",
        "reason_ciphertext",
        existing_type=sa.LargeBinary(),
        nullable=False,
        comment=OLD_COMMENT,
        existing_comment=NEW_COMMENT,
    )
