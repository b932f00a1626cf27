"""The access tasks: retrieve access requests (a periodic tick, kicked at intake) and destroy
exports whose retention date has passed. Retrieval runs on the pipeline queue, never the ticks
queue, so a long read never holds the scheduler's ticks back."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from erasure import task_names
from erasure.access import retention as access_retention
from erasure.access import retrieve
from erasure.access.budget import EntriesWindow
from erasure.celery_app import ErasureTask, relay_quietly
from erasure.config import Settings


def access_tunables(settings: Settings) -> retrieve.AccessTunables:
    return retrieve.AccessTunables(
        window=EntriesWindow(settings.access_entries_per_minute, settings.access_entries_window_s),
        activity_s=settings.access_activity_s,
        export_retention=timedelta(days=settings.access_export_retention_days),
    )


@shared_task(name=task_names.RETRIEVE_ACCESS, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def retrieve_access(self: ErasureTask) -> int:
    """Work due access requests; a failed look-up or read leaves the request leased, and a
    later tick takes it up again."""
    try:
        return retrieve.run(self.pipeline(), access_tunables(self.resources().settings))
    finally:
        relay_quietly(self)


@shared_task(name=task_names.DESTROY_EXPORTS, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def destroy_exports(self: ErasureTask) -> int:
    """Destroy exports (and the subject's identifiers) whose retention date has passed."""
    total = 0
    with self.new_session() as session:
        while count := access_retention.destroy_expired(session):
            session.commit()
            total += count
    return total
