"""list_indexes_at_scale: an index on each request's lead, and the status index covers at-risk

A deadline filter on a list ordered by arrival (`due_before`) is bounded by created_at <
instant - the smallest lead of any request (erasure.core.request_pages.due_before); this index
gives that smallest lead in O(log n), so the bound costs one index probe per page. Without it a
page filtered on `due_before=now` read every request not yet due (41,096 rows at 1M) before its
first match.

The status index also carries is_at_risk and due_at (INCLUDE), so the console's count of at-risk
requests (open, and at risk or overdue, up to 10,001) is an index-only scan: at 1M rows it read
the table, 2,127 buffers and 80 ms, against 114 buffers.

Revision ID: 5d2b7c1e9a40
Revises: b5d2e8f4a6c1
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2b7c1e9a40"
down_revision: str | None = "b5d2e8f4a6c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


STATUS_INDEX = "ix_erasure_requests_status_created_at_id"
STATUS_KEY = ["status", "created_at", "id"]


def upgrade() -> None:
    op.create_index(
        "ix_erasure_requests_due_lead", "erasure_requests", [sa.text("(due_at - created_at)")]
    )
    op.drop_index(STATUS_INDEX, table_name="erasure_requests")
    op.create_index(
        STATUS_INDEX,
        "erasure_requests",
        STATUS_KEY,
        postgresql_include=["is_at_risk", "due_at"],
    )


def downgrade() -> None:
    op.drop_index(STATUS_INDEX, table_name="erasure_requests")
    op.create_index(STATUS_INDEX, "erasure_requests", STATUS_KEY)
    op.drop_index("ix_erasure_requests_due_lead", table_name="erasure_requests")
