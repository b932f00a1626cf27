"""Legal holds: the holds (a subject's pseudonym or an org-wide matter, a sealed reason, an end),
each request's waits on them, and the `on_hold` request status.

The status CHECK is replaced (a scan of erasure_requests under an ACCESS EXCLUSIVE lock; the new
list only adds a value). A downgrade puts held requests back to `deleting`: without the holds
tables nothing would stop them, which is what the schema before this revision did.

Revision ID: aeedf2290725
Revises: 5b1e0c2d7a91
Create Date: 2026-12-03 05:27:08.615869
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "aeedf2290725"
down_revision: str | None = "5b1e0c2d7a91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_STATUSES = (
    "received",
    "awaiting_approval",
    "approved",
    "resolving",
    "deleting",
    "confirming",
    "completed",
    "completed_no_data",
    "failed",
    "cancelled",
    "rejected",
)
_CHECK = "request_status"  # the naming convention makes it ck_erasure_requests_request_status


def _status_check(statuses: Sequence[str]) -> None:
    op.drop_constraint(op.f(f"ck_erasure_requests_{_CHECK}"), "erasure_requests", type_="check")
    listed = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint(_CHECK, "erasure_requests", sa.text(f"status IN ({listed})"))


def upgrade() -> None:
    _status_check((*_STATUSES, "on_hold"))
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "subject",
                "org",
                name="hold_scope",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "identifier_kind",
            sa.Enum(
                "phone",
                "email",
                "messaging_platform_key",
                "contact_id",
                "messaging_end_user_id",
                name="hold_identifier_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "blind_index",
            sa.LargeBinary(length=32),
            nullable=True,
            comment="HMAC-SHA256(pseudonym key, kind:normalized value), as subject_identifiers",
        ),
        sa.Column(
            "reason_ciphertext",
            sa.LargeBinary(),
            nullable=False,
            comment="AES-256-GCM, bound to the hold's id; never stored in plain text",
        ),
        sa.Column("reason_key_id", sa.String(length=32), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "placed_by",
            sa.String(length=128),
            nullable=False,
            comment="api-key:<prefix> or user:<id>",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=128), nullable=True),
        sa.Column(
            "expired_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the sweep recorded that ends_at had passed",
        ),
        sa.CheckConstraint(
            "(scope = 'subject') = (blind_index IS NOT NULL AND identifier_kind IS NOT NULL)",
            name=op.f("ck_legal_holds_subject_has_pseudonym"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_legal_holds_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(
        op.f("ix_legal_holds_blind_index"), "legal_holds", ["blind_index"], unique=False
    )
    op.create_index(op.f("ix_legal_holds_org_id"), "legal_holds", ["org_id"], unique=False)
    op.create_table(
        "hold_waits",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column(
            "hold_ids",
            postgresql.ARRAY(sa.Uuid()),
            nullable=False,
            comment="the holds that covered the request when last checked",
        ),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "ended_how",
            sa.String(length=16),
            nullable=True,
            comment="hold_ended | override | cancelled",
        ),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.Column("override_reason_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("override_reason_key_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_hold_waits_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold_waits")),
    )
    op.create_index(op.f("ix_hold_waits_request_id"), "hold_waits", ["request_id"], unique=False)
    op.create_index(
        "uq_hold_waits_one_open",
        "hold_waits",
        ["request_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.execute("UPDATE erasure_requests SET status = 'deleting' WHERE status = 'on_hold'")
    _status_check(_STATUSES)
    op.drop_index(
        "uq_hold_waits_one_open",
        table_name="hold_waits",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.drop_index(op.f("ix_hold_waits_request_id"), table_name="hold_waits")
    op.drop_table("hold_waits")
    op.drop_index(op.f("ix_legal_holds_org_id"), table_name="legal_holds")
    op.drop_index(op.f("ix_legal_holds_blind_index"), table_name="legal_holds")
    op.drop_table("legal_holds")
