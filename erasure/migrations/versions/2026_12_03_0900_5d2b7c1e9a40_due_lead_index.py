"""due_lead_index: an index on each request's lead, due_at - created_at

A deadline filter on a list ordered by arrival (`due_before`) is bounded by created_at <
instant - the smallest lead of any request (erasure.core.request_pages.due_before); this index
gives that smallest lead in O(log n), so the bound costs one index probe per page. Without it a
page filtered on `due_before=now` read every request not yet due (41,096 rows at 1M) before its
first match.

Revision ID: 5d2b7c1e9a40
Revises: e3c8d5a1f0b2
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2b7c1e9a40"
down_revision: str | None = "e3c8d5a1f0b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_erasure_requests_due_lead", "erasure_requests", [sa.text("(due_at - created_at)")]
    )


def downgrade() -> None:
    op.drop_index("ix_erasure_requests_due_lead", table_name="erasure_requests")
