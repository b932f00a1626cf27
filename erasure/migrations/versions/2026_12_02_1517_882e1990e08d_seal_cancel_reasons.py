"""Cancel reasons are sealed like notes (they may name the subject); the outcome is a fixed phrase.

Schema only. Rows cancelled before this revision keep "cancelled: <reason>" in `outcome`: sealing
them needs the encryption keys, which a migration does not have. `erasure keys reencrypt` seals
those reasons into the new columns and rewrites the outcome (run it once after upgrading), and
retention removes any left when it shreds the request. Downgrading drops the sealed reasons.

Revision ID: 882e1990e08d
Revises: 05e9b458cca7
Create Date: 2026-12-02 15:17:30.800719
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "882e1990e08d"
down_revision: str | None = "05e9b458cca7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "erasure_requests",
        sa.Column(
            "cancel_reason_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="why it was cancelled: free text, encrypted like the notes",
        ),
    )
    op.add_column(
        "erasure_requests", sa.Column("cancel_reason_key_id", sa.String(length=32), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("erasure_requests", "cancel_reason_key_id")
    op.drop_column("erasure_requests", "cancel_reason_ciphertext")
