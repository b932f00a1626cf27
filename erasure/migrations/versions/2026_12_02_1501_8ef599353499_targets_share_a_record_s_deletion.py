"""Targets share a record's deletion: one leading target per record in flight

Several requests can reach one Salesforce record. `leads_deletion` marks the one target whose id a
delete call carries; the others attach to its deletion. A partial unique index lets a record have
only one leading target in flight, and `ix_targets_record` finds a record's targets.
`duplicate_of_id` now names the root of a request's linked group.

Revision ID: 8ef599353499
Revises: 9ce936e01cd0
Create Date: 2026-12-02 15:01:42.649084
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8ef599353499"
down_revision: str | None = "9ce936e01cd0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FLIGHT = "status IN ('batched', 'requested', 'in_progress', 'withdrawn')"
NEXT_CHECK = "sent: next log poll; blocked: next session check; pending: held until then"
DUPLICATE_OF = (
    "the first request of the group of requests for the same subject this one joined (linked "
    "through any shared identifier)"
)
DUPLICATE_OF_BEFORE = "the open request for the same subject this one was linked to"


def upgrade() -> None:
    op.add_column(
        "targets",
        sa.Column(
            "leads_deletion",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="the target whose record id its delete call carries; other targets of the "
            "record attach to its deletion",
        ),
    )
    op.alter_column(
        "targets",
        "next_check_at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        comment=NEXT_CHECK,
        existing_nullable=True,
    )
    op.alter_column(
        "erasure_requests",
        "duplicate_of_id",
        existing_type=sa.UUID(),
        comment=DUPLICATE_OF,
        existing_comment=DUPLICATE_OF_BEFORE,
        existing_nullable=True,
    )
    # Deletions already in flight get a leader (the latest target of each record in a call), so
    # the scheduler sees them and attaches, rather than re-sends, what else needs the record.
    op.execute(
        "UPDATE targets SET leads_deletion = true WHERE id IN ("
        " SELECT DISTINCT ON (org_id, kind, salesforce_id) id FROM targets"
        " WHERE status IN ('batched', 'requested', 'in_progress', 'withdrawn')"
        " AND delete_call_id IS NOT NULL AND salesforce_id IS NOT NULL"
        " ORDER BY org_id, kind, salesforce_id, updated_at DESC, id)"
    )
    op.create_index("ix_targets_record", "targets", ["org_id", "kind", "salesforce_id"])
    op.create_index(
        "uq_targets_one_deletion_in_flight",
        "targets",
        ["org_id", "kind", "salesforce_id"],
        unique=True,
        postgresql_where=sa.text(f"leads_deletion AND {IN_FLIGHT}"),
    )


def downgrade() -> None:
    op.drop_index("uq_targets_one_deletion_in_flight", table_name="targets")
    op.drop_index("ix_targets_record", table_name="targets")
    op.alter_column(
        "targets",
        "next_check_at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        comment=None,
        existing_comment=NEXT_CHECK,
        existing_nullable=True,
    )
    op.alter_column(
        "erasure_requests",
        "duplicate_of_id",
        existing_type=sa.UUID(),
        comment=DUPLICATE_OF_BEFORE,
        existing_comment=DUPLICATE_OF,
        existing_nullable=True,
    )
    op.drop_column("targets", "leads_deletion")
