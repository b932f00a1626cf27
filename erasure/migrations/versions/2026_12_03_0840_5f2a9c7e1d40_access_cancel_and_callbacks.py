"""access requests: cancel (a sealed reason) and callbacks

An access request can be cancelled before its export is built: `access_status` gets
`cancelled` (a VARCHAR with a named CHECK, erasure.db.str_enum) and the request a sealed cancel
reason. Its events are delivered to callback subscriptions like an erasure request's: a delivery
row names either an erasure request or an access request, never both.

Revision ID: 5f2a9c7e1d40
Revises: 5d2b7c1e9a40
Create Date: 2026-12-03 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5f2a9c7e1d40"
down_revision: str | None = "5d2b7c1e9a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("received", "retrieving", "ready", "completed_no_data", "failed", "destroyed")
AFTER = (*BEFORE, "cancelled")
STATUS_CHECK = "ck_access_requests_access_status"


def _statuses(values: Sequence[str]) -> None:
    allowed = ", ".join(f"'{v}'" for v in values)
    op.execute(f"ALTER TABLE access_requests DROP CONSTRAINT IF EXISTS {STATUS_CHECK}")
    op.execute(
        f"ALTER TABLE access_requests ADD CONSTRAINT {STATUS_CHECK} CHECK (status IN ({allowed}))"
    )


def upgrade() -> None:
    _statuses(AFTER)
    op.add_column(
        "access_requests",
        sa.Column(
            "cancel_reason_ciphertext",
            sa.LargeBinary(),
            nullable=True,
            comment="why it was cancelled (free text), AES-256-GCM; NULL at retention",
        ),
    )
    op.add_column(
        "access_requests", sa.Column("cancel_reason_key_id", sa.String(length=32), nullable=True)
    )
    op.add_column(
        "callback_deliveries",
        sa.Column(
            "access_request_id",
            sa.Uuid(),
            nullable=True,
            comment="an access request's event (then request_id is NULL)",
        ),
    )
    op.create_foreign_key(
        op.f("fk_callback_deliveries_access_request_id_access_requests"),
        "callback_deliveries",
        "access_requests",
        ["access_request_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        op.f("ix_callback_deliveries_access_request_id"),
        "callback_deliveries",
        ["access_request_id"],
        unique=False,
    )
    op.alter_column("callback_deliveries", "request_id", existing_type=sa.Uuid(), nullable=True)
    op.create_check_constraint(
        op.f("ck_callback_deliveries_one_request"),
        "callback_deliveries",
        "(request_id IS NULL) <> (access_request_id IS NULL)",
    )


def downgrade() -> None:
    # Access requests' deliveries and cancels mean nothing to the older code.
    op.execute("DELETE FROM callback_deliveries WHERE access_request_id IS NOT NULL")
    op.drop_constraint(
        op.f("ck_callback_deliveries_one_request"), "callback_deliveries", type_="check"
    )
    op.alter_column("callback_deliveries", "request_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_index(
        op.f("ix_callback_deliveries_access_request_id"), table_name="callback_deliveries"
    )
    op.drop_constraint(
        op.f("fk_callback_deliveries_access_request_id_access_requests"),
        "callback_deliveries",
        type_="foreignkey",
    )
    op.drop_column("callback_deliveries", "access_request_id")
    op.execute("UPDATE access_requests SET status = 'failed' WHERE status = 'cancelled'")
    op.drop_column("access_requests", "cancel_reason_key_id")
    op.drop_column("access_requests", "cancel_reason_ciphertext")
    _statuses(BEFORE)
