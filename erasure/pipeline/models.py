"""The pipeline's operational tables: alerts for a person, task deliveries counted to park
messages that keep coming back, and the legal holds that stop deletion (with each wait on them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from erasure.core.models import IdentifierKind
from erasure.db import UUID_PK, Base, now_column, str_enum


class Alert(Base):
    """Something a person must look at: an org paused by a 404, a parked poison message, a
    deadline at risk. No personal data: ids and short reasons only."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_alerts_open", "kind", postgresql_where=text("resolved_at IS NULL")),
    )


class TaskDelivery(Base):
    """How many times one task message (Celery task id) was delivered: bounds poison messages."""

    __tablename__ = "task_deliveries"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = now_column()


class HoldScope(StrEnum):
    SUBJECT = "subject"  # one subject, named by an identifier's pseudonym
    ORG = "org"  # an org-wide matter: every erasure request of the org


class LegalHold(Base):
    """A legal hold (GDPR Art. 17(3)(e)): erasures it covers stop before deletion until it ends
    or is released. The subject is kept only as the pseudonym requests use for their
    identifiers (the same HMAC, so a hold finds them by blind index); the reason is free text
    that may name people, so it is sealed like a request's notes."""

    __tablename__ = "legal_holds"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    scope: Mapped[HoldScope] = mapped_column(str_enum(HoldScope, "hold_scope"))
    identifier_kind: Mapped[IdentifierKind | None] = mapped_column(
        str_enum(IdentifierKind, "hold_identifier_kind")
    )
    blind_index: Mapped[bytes | None] = mapped_column(
        LargeBinary(32),
        index=True,
        comment="HMAC-SHA256(pseudonym key, kind:normalized value), as subject_identifiers",
    )
    reason_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        comment="AES-256-GCM, bound to the hold's id; never stored in plain text; "
        "NULL once destroyed at retention",
    )
    reason_key_id: Mapped[str | None] = mapped_column(String(32))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    placed_by: Mapped[str] = mapped_column(String(128), comment="api-key:<prefix> or user:<id>")
    created_at: Mapped[datetime] = now_column()
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(128))
    expired_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when the sweep recorded that ends_at had passed"
    )

    __table_args__ = (
        CheckConstraint(
            "(scope = 'subject') = (blind_index IS NOT NULL AND identifier_kind IS NOT NULL)",
            name="subject_has_pseudonym",
        ),
    )


class HoldWait(Base):
    """One time a request waited on legal holds: from `request.held` until it resumed (the
    holds ended, or an approver overrode them with a sealed reason) or was cancelled."""

    __tablename__ = "hold_waits"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    hold_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid), comment="the holds that covered the request when last checked"
    )
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_how: Mapped[str | None] = mapped_column(
        String(16), comment="hold_ended | override | cancelled"
    )
    ended_by: Mapped[str | None] = mapped_column(String(128))
    override_reason_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    override_reason_key_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index(
            "uq_hold_waits_one_open",
            "request_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )


class ConversationActivity(Base):
    """A Salesforce record an entries read made active (about 30 minutes, documented): a delete
    reaching it before `active_until` would get 412, so its targets wait (scheduler)."""

    __tablename__ = "conversation_activity"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    #: 18-char MessagingEndUser id (the participant delete reaches its conversations) or
    #: Conversation id.
    salesforce_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    #: Indexed: the scheduler reads the active records (erasure.pipeline.scheduler._made_active).
    active_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
