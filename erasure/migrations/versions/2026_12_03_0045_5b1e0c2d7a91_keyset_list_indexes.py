"""keyset list indexes: one (column, created_at, id) index per list filter

Lists page newest first on (created_at, id). With an index that starts with the filter's
equality column and continues in that order, a filtered page is an ordered index scan that
stops after the page, at any depth, instead of reading every newer row. The (status) and
(api_key_id) indexes become the leading columns of the new ones, so they are dropped.

On a large table, build these ahead of the upgrade with CREATE INDEX CONCURRENTLY under the same
names; the IF NOT EXISTS here then skips them.

Revision ID: 5b1e0c2d7a91
Revises: 8964430ce296
Create Date: 2026-12-03 00:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b1e0c2d7a91"
down_revision: str | None = "8964430ce296"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_erasure_requests_status_created_at_id": "status, created_at, id",
    "ix_erasure_requests_source_created_at_id": "source, created_at, id",
    "ix_erasure_requests_api_key_created_at_id": "api_key_id, created_at, id",
    "ix_erasure_requests_reference_system_created_at_id": "reference_system, created_at, id",
    "ix_erasure_requests_reference_id_created_at_id": "reference_id, created_at, id",
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON erasure_requests ({columns})")
    op.drop_index("ix_erasure_requests_status", table_name="erasure_requests")
    op.drop_index("ix_erasure_requests_api_key_id", table_name="erasure_requests")


def downgrade() -> None:
    op.create_index("ix_erasure_requests_api_key_id", "erasure_requests", ["api_key_id"])
    op.create_index("ix_erasure_requests_status", "erasure_requests", ["status"])
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="erasure_requests")
