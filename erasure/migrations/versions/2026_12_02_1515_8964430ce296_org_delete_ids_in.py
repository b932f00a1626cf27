"""orgs.delete_ids_in: where an org's DELETE calls put the ids (JSON body or query string)

Salesforce does not document the request shape of the Conversation Data API deletes, so it is a
per-org setting. Existing orgs keep what the client always sent: a JSON body. Adding a column
with a constant default is a catalog-only change in Postgres 11+; the CHECK scans `orgs`, a
table of a handful of rows.

Revision ID: 8964430ce296
Revises: 882e1990e08d
Create Date: 2026-12-02 15:15:09.344592
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8964430ce296"
down_revision: str | None = "882e1990e08d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orgs",
        sa.Column(
            "delete_ids_in",
            sa.Enum(
                "body",
                "query",
                name="delete_ids_in",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="body",
            nullable=False,
            comment="where DELETE calls put the ids: a JSON body or the query string (undocumented by Salesforce; `erasure salesforce check` finds out)",
        ),
    )


def downgrade() -> None:
    op.drop_column("orgs", "delete_ids_in")
