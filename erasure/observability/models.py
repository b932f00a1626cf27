"""Heartbeats: each worker, beat and relay says it is alive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import Base, now_column


class Heartbeat(Base):
    """The last sign of life of each worker and beat process, stamped with the database's clock
    (so hosts whose clocks disagree still compare); `/readyz` reads it."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="`worker:<queue>` for each queue consumed, or `beat`"
    )
    instance: Mapped[str] = mapped_column(
        String(255), primary_key=True, comment="the process: Celery node name, or host:pid"
    )
    beat_at: Mapped[datetime] = now_column()
