"""The outbox relay task: publishes rows whose transaction committed but whose publish never
happened (periodic, and kicked by the web layer after a commit)."""

from __future__ import annotations

from celery import shared_task

from erasure import task_names
from erasure.celery_app import ErasureTask


@shared_task(name=task_names.RELAY_OUTBOX, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def relay_outbox(self: ErasureTask) -> int:
    """Publish outbox rows whose transaction committed but whose publish never happened."""
    return self.relay()
