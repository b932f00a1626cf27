"""The retention task: crypto-shred identifiers whose retention period has ended."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from erasure import retention, task_names
from erasure.celery_app import ErasureTask


@shared_task(name=task_names.SHRED_EXPIRED, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def shred_expired(self: ErasureTask) -> int:
    """Crypto-shred the identifiers of requests whose retention period has ended, and the
    reasons of legal holds that ended a retention period ago."""
    days = self.resources().settings.retention_days
    total = 0
    with self.new_session() as session:
        while count := retention.shred_expired(session, retention=timedelta(days=days)):
            session.commit()
            total += count
        while shredded := retention.shred_ended_holds(session, retention=timedelta(days=days)):
            session.commit()
            total += len(shredded)
    return total
