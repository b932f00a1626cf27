"""The thin Celery app: `create_celery(settings)` (serialisation, acknowledgement, queues and
routes, the beat schedule), the task base class with the worker's resources, and the publisher
the outbox relay sends through. The tasks themselves are in erasure.tasks, one module per domain.

Tasks take ids (strings), never objects, and are safe to run twice. The database decides what
happens: a message only says "look at this request" (resolve) or is a periodic tick (dispatch,
confirm, sweep, predict, relay). Every task publishes the outbox rows its transactions committed
before it returns; the periodic relay covers a crash in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from celery import Celery, Task, bootsteps
from celery.beat import EmbeddedService
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.outbox import messages as outbox
from erasure.pipeline.context import Pipeline, Tunables
from erasure.worker_pools import (
    DELIVERIES_QUEUE,
    DELIVERY_TASKS,
    PIPELINE_QUEUE,
    QUEUES,
    TICK_TASKS,
    TICKS_QUEUE,
)

logger = logging.getLogger(__name__)

RELAY_INTERVAL_S = 2.0
SWEEP_INTERVAL_S = 15.0
PREDICT_INTERVAL_S = 15.0
AUDIT_SEQUENCE_INTERVAL_S = 1.0
RETENTION_INTERVAL_S = 3600.0
CALLBACK_INTERVAL_S = 2.0
ACCESS_INTERVAL_S = 2.0
NOTICE_SWEEP_INTERVAL_S = 60.0


@dataclass(frozen=True)
class WorkerResources:
    """Built once per worker process by the composition root (erasure.worker)."""

    settings: Settings
    sessionmaker: Callable[[], Session]
    celery: Celery
    pipeline: Pipeline | None = field(default=None)
    signing_key: SigningKey | None = field(default=None)


def tunables(settings: Settings) -> Tunables:
    return Tunables(
        linger_s=settings.batch_linger_s,
        poll_min_s=min(1.0, settings.confirm_interval_s),
        stall_s=settings.stall_s,
        max_deliveries=settings.max_task_deliveries,
        # A call cannot still be in flight once the client's read timeout has passed.
        orphan_after_s=settings.salesforce_read_timeout_s + 10.0,
        log_final_timeout_s=settings.log_final_timeout_s,
    )


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

    def pipeline(self) -> Pipeline:
        pipeline = self.resources().pipeline
        if pipeline is None:
            raise RuntimeError("this worker has no pipeline resources")
        return pipeline

    def relay(self) -> int:
        """Publish what our transactions queued in the outbox (after their commit)."""
        resources = self.resources()
        with self.new_session() as session, session.begin():
            return outbox.publish_due(session, publisher(resources.celery))


#: How often a worker run with `--beat` looks at its beat process.
BEAT_CHECK_S = 1.0


class KeepEmbeddedBeat(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """`worker --beat` runs beat in a child process that Celery starts once and never watches:
    killed (kill -9, the OOM killer), it left the worker consuming with nothing to tick, so no
    relay, no dispatch and every new request stuck in `received`. This step looks at it every
    BEAT_CHECK_S from the worker's event loop and starts another when it is gone; the other
    reads the same schedule file (one a kill left half-written is made afresh by Celery's
    scheduler). A separate `celery beat` (docker-compose, standalone) has its supervisor for
    that instead."""

    requires = ("celery.worker.components:Beat", "celery.worker.components:Timer")
    conditional = True

    def __init__(self, w: Any, beat: bool = False, **kwargs: Any) -> None:
        self.enabled = bool(beat)
        self.entry: Any = None
        self.replacement: Any = None
        super().__init__(w, beat=beat, **kwargs)

    def start(self, w: Any) -> None:
        self.entry = w.timer.call_repeatedly(BEAT_CHECK_S, self.check, (w,))

    def check(self, w: Any) -> None:
        if w.beat is None or w.beat.is_alive():
            return
        logger.error("embedded beat exited (code %s); starting it again", w.beat.exitcode)
        self.replacement = w.beat = EmbeddedService(
            w.app, schedule_filename=w.schedule_filename, scheduler_cls=w.scheduler
        )
        w.beat.start()

    def stop(self, w: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None
        # Celery's own Beat step stops the first beat; a replacement is this step's to stop.
        if self.replacement is not None:
            self.replacement.stop()
            self.replacement = None

    shutdown = stop


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once, database-driven work."""
    app = Celery("erasure", broker=settings.broker_url, set_as_current=False)

    def tick(task: str, every: float) -> dict[str, Any]:
        # A tick that waited in the broker longer than a few periods is dropped, not run late.
        return {"task": task, "schedule": every, "options": {"expires": max(5.0, every * 5)}}

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
        # Deliveries (which wait on receivers) never take a pipeline slot, and ticks (which
        # expire when they wait) never queue behind lookups: each has its own queue and workers.
        # A worker without --queues consumes all three (erasure.worker_pools).
        task_queues={name: {"exchange": name, "routing_key": name} for name in QUEUES},
        task_default_queue=PIPELINE_QUEUE,
        task_default_routing_key=PIPELINE_QUEUE,
        task_routes={
            **{name: {"queue": DELIVERIES_QUEUE} for name in DELIVERY_TASKS},
            **{name: {"queue": TICKS_QUEUE} for name in TICK_TASKS},
        },
        beat_schedule={
            "relay-outbox": tick(task_names.RELAY_OUTBOX, RELAY_INTERVAL_S),
            "dispatch": tick(task_names.DISPATCH, settings.dispatch_interval_s),
            "confirm": tick(task_names.CONFIRM, settings.confirm_interval_s),
            "sweep": tick(task_names.SWEEP, min(SWEEP_INTERVAL_S, settings.stall_s)),
            "predict": tick(task_names.PREDICT, PREDICT_INTERVAL_S),
            "dispatch-callbacks": tick(task_names.DISPATCH_CALLBACKS, CALLBACK_INTERVAL_S),
            "send-callbacks": tick(task_names.SEND_CALLBACKS, CALLBACK_INTERVAL_S),
            "sequence-audit": tick(task_names.SEQUENCE_AUDIT, AUDIT_SEQUENCE_INTERVAL_S),
            "checkpoint-audit": tick(
                task_names.CHECKPOINT_AUDIT, settings.audit_checkpoint_interval_s
            ),
            "shred-expired": tick(task_names.SHRED_EXPIRED, RETENTION_INTERVAL_S),
            "retrieve-access": tick(task_names.RETRIEVE_ACCESS, ACCESS_INTERVAL_S),
            "destroy-exports": tick(task_names.DESTROY_EXPORTS, RETENTION_INTERVAL_S),
            "sweep-notices": tick(task_names.SWEEP_NOTICES, NOTICE_SWEEP_INTERVAL_S),
        },
    )
    app.steps["worker"].add(KeepEmbeddedBeat)
    return app


def publisher(app: Celery) -> outbox.Publisher:
    def publish(task_name: str, args: Sequence[Any], *, correlation_id: str | None = None) -> None:
        # A custom message header: the worker's task_prerun handler logs under this id.
        headers = {"correlation_id": correlation_id} if correlation_id else None
        app.send_task(task_name, args=list(args), headers=headers)

    return publish


def relay_quietly(task: ErasureTask) -> None:
    try:
        task.relay()
    except OperationalError:
        logger.warning("outbox relay failed; the periodic relay will publish")
