"""Deliveries: a circuit breaker per destination, shared by every worker (delivery_circuits), and
a lease on the delivery being sent (claim_id; the lease ends at next_attempt_at), so no row lock
is held during the HTTP call. Existing deliveries get their destination from their URL.

Revision ID: 07650a7e6101
Revises: 8ef599353499
Create Date: 2026-12-02 15:14:19.459420
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "07650a7e6101"
down_revision: str | None = "8ef599353499"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _destination(url: str) -> str:
    """As erasure.integrations.transport.destination_of, frozen here."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _backfill() -> None:
    bind = op.get_bind()
    deliveries = sa.table(
        "callback_deliveries",
        sa.column("destination", sa.Text()),
        sa.column("subscription_id", sa.Uuid()),
        sa.column("webhook_source_id", sa.Uuid()),
    )
    for owner_column, query in (
        ("subscription_id", "SELECT id, url FROM callback_subscriptions"),
        (
            "webhook_source_id",
            "SELECT id, comment_base_url FROM webhook_sources WHERE comment_base_url IS NOT NULL",
        ),
    ):
        for owner_id, url in bind.execute(sa.text(query)).all():
            bind.execute(
                deliveries.update()
                .where(deliveries.c[owner_column] == owner_id)
                .values(destination=_destination(url))
            )


def upgrade() -> None:
    op.create_table(
        "delivery_circuits",
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column(
            "failures",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="consecutive failed attempts",
        ),
        sa.Column(
            "opened_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="open (or probing) until then: no other attempt",
        ),
        sa.Column(
            "probe_claim_id",
            sa.Uuid(),
            nullable=True,
            comment="the attempt probing the half-open circuit",
        ),
        sa.Column(
            "last_error",
            sa.String(length=255),
            nullable=True,
            comment="HTTP status or error class; never a response body",
        ),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_delivery_circuits")),
    )
    op.add_column(
        "callback_deliveries",
        sa.Column(
            "destination",
            sa.Text(),
            server_default="",
            nullable=False,
            comment="scheme://host:port of the URL: its circuit breaker",
        ),
    )
    op.add_column(
        "callback_deliveries",
        sa.Column(
            "claim_id",
            sa.Uuid(),
            nullable=True,
            comment="the attempt in flight; its lease ends at next_attempt_at",
        ),
    )
    op.create_index(
        "ix_callback_deliveries_pending_destination",
        "callback_deliveries",
        ["destination"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_callback_deliveries_leased",
        "callback_deliveries",
        ["destination"],
        unique=False,
        postgresql_where=sa.text("claim_id IS NOT NULL"),
    )
    _backfill()


def downgrade() -> None:
    op.drop_index(
        "ix_callback_deliveries_leased",
        table_name="callback_deliveries",
        postgresql_where=sa.text("claim_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_callback_deliveries_pending_destination",
        table_name="callback_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_column("callback_deliveries", "claim_id")
    op.drop_column("callback_deliveries", "destination")
    op.drop_table("delivery_circuits")
