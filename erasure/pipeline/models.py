"""The pipeline's operational tables: alerts for a person, and task deliveries counted to park
messages that keep coming back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import Base, now_column


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
    active_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
