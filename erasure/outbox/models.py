"""The outbox table: work written with a transaction, published after its commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import Base, now_column


class OutboxMessage(Base):
    """A task to publish once the transaction that wrote it has committed."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSONB, comment="ids only, never personal data")
    created_at: Mapped[datetime] = now_column()
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="long waits live here"
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correlation_id: Mapped[str | None] = mapped_column(
        String(64), comment="of the HTTP request or task that caused it, for the logs"
    )

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "available_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )
