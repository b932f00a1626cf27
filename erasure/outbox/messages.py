"""The transactional outbox: work is written in the same transaction as the state change that
causes it, and published to the broker only after that commit. If the process dies between the
commit and the publish, the periodic relay publishes it later: nothing committed is lost.

Framework-free: publishing goes through a callable the Celery edge provides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from psycopg.types.json import Jsonb
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import correlation
from erasure.db import Insert
from erasure.outbox.models import OutboxMessage


class Publisher(Protocol):
    def __call__(
        self, task_name: str, args: Sequence[Any], *, correlation_id: str | None = None
    ) -> None: ...


def enqueue(
    session: Session, task_name: str, args: Sequence[Any], *, not_before: datetime | None = None
) -> OutboxMessage:
    """Record work to publish after commit. `args` are ids only. Does not commit."""
    message = OutboxMessage(
        task_name=task_name, args=list(args), correlation_id=correlation.current.get()
    )
    if not_before is not None:
        message.available_at = not_before
    session.add(message)
    return message


INSERT_SQL = "INSERT INTO outbox (task_name, args, correlation_id) VALUES (%s, %s, %s)"


def outbox_insert(task_name: str, args: Sequence[Any]) -> Insert:
    """`enqueue` for a hot path that writes plain statements (`erasure.db.insert_together`): the
    same row, as an INSERT to send with the transaction's other writes."""
    return Insert(INSERT_SQL, (task_name, Jsonb(list(args)), correlation.current.get()))


def publish_due(session: Session, publish: Publisher, *, limit: int = 500) -> int:
    """Publish due, unpublished messages and mark them; returns how many. Caller commits.

    Rows are claimed with SKIP LOCKED so concurrent relays share the work instead of doubling it.
    A message published but not marked (crash before commit) is published again: tasks are
    idempotent, so at-least-once delivery is safe.
    """
    now = datetime.now(UTC)
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.published_at.is_(None), OutboxMessage.available_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for message in rows:
        message.publish_attempts += 1
        publish(message.task_name, message.args, correlation_id=message.correlation_id)
        message.published_at = now
    return len(rows)


def purge_published(session: Session, *, older_than: timedelta) -> int:
    """Delete published rows older than `older_than`; the audit log, not the outbox, is history."""
    cutoff = datetime.now(UTC) - older_than
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < cutoff)
        .limit(10000)
    ).all()
    for message in rows:
        session.delete(message)
    return len(rows)
