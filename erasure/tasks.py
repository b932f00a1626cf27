"""The Celery edge: `create_celery(settings)`, the task base class, and thin tasks that call
domain functions. Tasks take ids (strings), never objects, and are safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from celery import Celery, Task, shared_task
from sqlalchemy.orm import Session

from erasure import outbox
from erasure.config import Settings

RELAY_INTERVAL_S = 2.0


@dataclass(frozen=True)
class WorkerResources:
    """Built once per worker process by the composition root (erasure.worker)."""

    settings: Settings
    sessionmaker: Callable[[], Session]
    celery: Celery


class ErasureTask(Task):  # type: ignore[misc]  # Celery ships no type information
    _resources: ClassVar[WorkerResources | None] = None

    @classmethod
    def install(cls, resources: WorkerResources) -> None:
        cls._resources = resources

    @classmethod
    def resources(cls) -> WorkerResources:
        if cls._resources is None:
            raise RuntimeError(
                "worker resources are not installed: start workers through erasure.worker"
            )
        return cls._resources

    def new_session(self) -> Session:
        return self.resources().sessionmaker()


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once, database-driven work."""
    app = Celery("erasure", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # A task is acknowledged only after it ran; a killed worker's task is redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Redis redelivers unacknowledged messages after this long; our tasks are short.
        broker_transport_options={"visibility_timeout": 300},
        worker_hijack_root_logger=False,
        beat_schedule={
            "relay-outbox": {"task": "erasure.relay_outbox", "schedule": RELAY_INTERVAL_S},
        },
    )
    return app


def publisher(app: Celery) -> outbox.Publisher:
    def publish(task_name: str, args: Sequence[Any]) -> None:
        app.send_task(task_name, args=list(args))

    return publish


@shared_task(name="erasure.relay_outbox", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def relay_outbox(self: ErasureTask) -> int:
    """Publish outbox rows whose transaction committed but whose publish never happened."""
    resources = self.resources()
    with self.new_session() as session, session.begin():
        return outbox.publish_due(session, publisher(resources.celery))
