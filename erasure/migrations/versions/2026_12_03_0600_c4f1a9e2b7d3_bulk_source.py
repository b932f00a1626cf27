"""bulk source: requests from the console's CSV upload get a source of their own

`source` is a VARCHAR with a named CHECK listing the allowed values (erasure.db.str_enum), so a
new value is a new CHECK. The webhook source's `system` column uses the same list.

Revision ID: c4f1a9e2b7d3
Revises: 12f7146ec109
Create Date: 2026-12-03 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4f1a9e2b7d3"
down_revision: str | None = "12f7146ec109"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("api", "ui", "jira", "zendesk", "servicenow", "standard_webhooks", "opendsr")
AFTER = ("api", "ui", "bulk", "jira", "zendesk", "servicenow", "standard_webhooks", "opendsr")
CHECKS = (
    ("erasure_requests", "ck_erasure_requests_source", "source"),
    ("webhook_sources", "ck_webhook_sources_webhook_system", "system"),
)


def _recreate(values: Sequence[str]) -> None:
    allowed = ", ".join(f"'{v}'" for v in values)
    for table, name, column in CHECKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({column} IN ({allowed}))")


def upgrade() -> None:
    _recreate(AFTER)


def downgrade() -> None:
    # Bulk uploads were console submissions before the value existed.
    op.execute("UPDATE erasure_requests SET source = 'ui' WHERE source = 'bulk'")
    _recreate(BEFORE)
