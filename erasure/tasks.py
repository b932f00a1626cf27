"""The Celery edge: `create_celery(settings)`, the task base class, and thin tasks that call
domain functions. Tasks take ids (strings), never objects, and are safe to run twice.

The database decides what happens: a message only says "look at this request" (resolve) or is a
periodic tick (dispatch, confirm, sweep, predict, relay). Every task publishes the outbox rows its
transactions committed before it returns; the periodic relay covers a crash in between.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import redis
from celery import Celery, Task, shared_task
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from erasure import outbox, retention
from erasure.audit import store as audit_store
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.deliveries import runner as delivery_runner
from erasure.pipeline import confirm as confirm_step
from erasure.pipeline import resolve as resolve_step
from erasure.pipeline import scheduler, sweep
from erasure.pipeline.context import Pipeline, Tunables
from erasure.salesforce.errors import SalesforceError
from erasure.worker_pools import DELIVERIES_QUEUE, DELIVERY_TASKS, PIPELINE_QUEUE, QUEUES

logger = logging.getLogger(__name__)

RELAY_INTERVAL_S = 2.0
SWEEP_INTERVAL_S = 15.0
PREDICT_INTERVAL_S = 15.0
RESOLVE_MAX_RETRIES = 5
AUDIT_SEQUENCE_INTERVAL_S = 1.0
RETENTION_INTERVAL_S = 3600.0


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
        # Two queues, so deliveries (which wait on receivers) never take a pipeline slot. A
        # worker without --queues consumes both (erasure.worker_pools).
        task_queues={name: {"exchange": name, "routing_key": name} for name in QUEUES},
        task_default_queue=PIPELINE_QUEUE,
        task_default_routing_key=PIPELINE_QUEUE,
        task_routes={name: {"queue": DELIVERIES_QUEUE} for name in DELIVERY_TASKS},
        beat_schedule={
            "relay-outbox": tick("erasure.relay_outbox", RELAY_INTERVAL_S),
            "dispatch": tick("erasure.dispatch", settings.dispatch_interval_s),
            "confirm": tick("erasure.confirm", settings.confirm_interval_s),
            "sweep": tick("erasure.sweep", min(SWEEP_INTERVAL_S, settings.stall_s)),
            "predict": tick("erasure.predict", PREDICT_INTERVAL_S),
            "dispatch-callbacks": tick("erasure.dispatch_callbacks", CALLBACK_INTERVAL_S),
            "send-callbacks": tick("erasure.send_callbacks", CALLBACK_INTERVAL_S),
            "sequence-audit": tick("erasure.sequence_audit", AUDIT_SEQUENCE_INTERVAL_S),
            "checkpoint-audit": tick(
                "erasure.checkpoint_audit", settings.audit_checkpoint_interval_s
            ),
            "shred-expired": tick("erasure.shred_expired", RETENTION_INTERVAL_S),
        },
    )
    return app


def publisher(app: Celery) -> outbox.Publisher:
    def publish(task_name: str, args: Sequence[Any], *, correlation_id: str | None = None) -> None:
        # A custom message header: the worker's task_prerun handler logs under this id.
        headers = {"correlation_id": correlation_id} if correlation_id else None
        app.send_task(task_name, args=list(args), headers=headers)

    return publish


@shared_task(name="erasure.relay_outbox", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def relay_outbox(self: ErasureTask) -> int:
    """Publish outbox rows whose transaction committed but whose publish never happened."""
    return self.relay()


@shared_task(  # type: ignore[untyped-decorator]
    name="erasure.resolve",
    base=ErasureTask,
    bind=True,
    acks_late=True,
    max_retries=RESOLVE_MAX_RETRIES,
)
def resolve(self: ErasureTask, request_id: str, attempt: int) -> str:
    """Find the subject's records and move the request on; a stale attempt changes nothing.

    A failed lookup is retried with the attempt its claim took (the claim bumped the request's
    fencing number, so a retry carrying the old one would only ever be stale), a little sooner
    than the sweeper would re-publish, and parked for a person once the message was tried
    `max_task_deliveries` times (or its retries ran out, or the error is not retryable, or is
    a bug). An outage of our own database is retried but never parked: the sweeper covers it."""
    ctx = self.pipeline()
    task_id = str(self.request.id or "")
    rid = uuid.UUID(request_id)
    deliveries, held = 0, int(attempt)
    try:
        # Counted in its own committed transaction first: a message that kills its worker
        # still counts, and is parked once it has come back too often.
        deliveries = sweep.count_delivery(ctx, task_id, self.name) if task_id else 1
        if deliveries > ctx.tunables.max_deliveries:
            sweep.park(ctx, task_id, self.name, request_id=rid, why="too many deliveries")
            return "parked"
        claimed = resolve_step.claim(ctx, rid, held)
        if isinstance(claimed, resolve_step.Outcome):
            return claimed.value
        held = claimed.attempt
        outcome = resolve_step.record(ctx, claimed, resolve_step.look_up(ctx, claimed))
    except RETRYABLE_FAILURES as exc:
        countdown = min(30.0, 2.0 ** (self.request.retries + 1), ctx.tunables.stall_s / 2)
        if isinstance(exc, DBAPIError) and not _database_down(exc):
            return _park_bug(self, ctx, task_id, rid, exc)
        if not isinstance(exc, SalesforceError):
            # Our own database or Redis is down (restarting, failing over): not the message's
            # fault, never parked. Once the retries run out the message is dropped and the
            # sweeper re-publishes the request.
            if self.request.retries >= RESOLVE_MAX_RETRIES:
                raise
            raise self.retry(args=[request_id, held], countdown=countdown, exc=exc) from exc
        if (
            not exc.retryable
            or self.request.retries >= RESOLVE_MAX_RETRIES
            or deliveries >= ctx.tunables.max_deliveries
        ):
            sweep.park(ctx, task_id, self.name, request_id=rid, why=type(exc).__name__)
            return "parked"
        raise self.retry(args=[request_id, held], countdown=countdown, exc=exc) from exc
    except Exception as exc:  # noqa: BLE001  # parked for a person, with the traceback logged
        return _park_bug(self, ctx, task_id, rid, exc)
    finally:
        _relay_quietly(self)
    return outcome.value


#: Our own infrastructure failing under a task (Redis holds the shared Salesforce tokens and
#: 429 holds): transient, like a database outage, never a reason to park a message.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)
RETRYABLE_FAILURES: tuple[type[Exception], ...] = (
    SalesforceError,
    DBAPIError,
    *INFRASTRUCTURE_ERRORS,
)


def _database_down(exc: DBAPIError) -> bool:
    """Our database is unreachable (restarting, failing over), as opposed to a bad statement."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def _park_bug(
    task: ErasureTask, ctx: Pipeline, task_id: str, request_id: uuid.UUID, exc: Exception
) -> str:
    """A bug, not a transient fault: redelivering it (or re-publishing it from the sweeper)
    would fail the same way for ever, so a person looks at it."""
    logger.error("resolve failed unexpectedly; parking the message", exc_info=exc)
    sweep.park(ctx, task_id, task.name, request_id=request_id, why=type(exc).__name__)
    return "parked"


def _relay_quietly(task: ErasureTask) -> None:
    try:
        task.relay()
    except OperationalError:
        logger.warning("outbox relay failed; the periodic relay will publish")


@shared_task(name="erasure.dispatch", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def dispatch(self: ErasureTask) -> int:
    """One pass of the quota scheduler (a no-op while another dispatcher runs)."""
    report = scheduler.dispatch(self.pipeline())
    _relay_quietly(self)
    return report.calls


@shared_task(name="erasure.confirm", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def confirm(self: ErasureTask) -> int:
    """Poll logs and read back sent targets whose check is due."""
    report = confirm_step.confirm(self.pipeline())
    _relay_quietly(self)
    return report.checked


@shared_task(name="erasure.sweep", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def sweep_stalled(self: ErasureTask) -> int:
    """Re-publish stalled work; forget old delivery counts."""
    ctx = self.pipeline()
    touched = sweep.sweep(ctx)
    sweep.purge_deliveries(ctx, older_than=ctx.clock() - timedelta(days=1))
    _relay_quietly(self)
    return touched


@shared_task(name="erasure.predict", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def predict(self: ErasureTask) -> int:
    """Refresh predicted completion times and "deadline at risk" flags."""
    return sweep.predict(self.pipeline())


# --- Integrations: status callbacks and ticket comments (erasure.integrations.callbacks) ---

CALLBACK_INTERVAL_S = 2.0


@shared_task(name="erasure.dispatch_callbacks", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def dispatch_callbacks(self: ErasureTask) -> int:
    """Turn new request events of the audit log into callback and comment deliveries."""
    from erasure.integrations import callbacks

    links = callbacks.Links(self.resources().settings.public_url)
    with self.new_session() as session, session.begin():
        return callbacks.dispatch(session, links=links)


@shared_task(name="erasure.send_callbacks", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def send_callbacks(self: ErasureTask) -> int:
    """Attempt due deliveries, several destinations at once (each delivery in its own short
    transactions, no lock held during its HTTP call); returns how many were handled."""
    settings = self.resources().settings
    return delivery_runner.run(
        self.resources().sessionmaker,
        delivery_runner.senders_from(settings),
        delivery_runner.Limits.from_settings(settings),
        delivery_runner.RunOptions(threads=settings.delivery_threads),
    )


@shared_task(name="erasure.sequence_audit", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def sequence_audit(self: ErasureTask) -> int:
    """Give queued audit leaves their positions in the Merkle tree (one sequencer at a time)."""
    total = 0
    with self.new_session() as session:
        while count := audit_store.sequence(session):
            session.commit()
            total += count
    return total


@shared_task(name="erasure.checkpoint_audit", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def checkpoint_audit(self: ErasureTask) -> int:
    """Sign a checkpoint of the tree if it grew; returns the signed size, or 0."""
    resources = self.resources()
    if resources.signing_key is None:
        logger.warning("no audit signing key configured: checkpoints are not being signed")
        return 0
    with self.new_session() as session, session.begin():
        while audit_store.sequence(session):
            pass
        checkpoint = audit_store.sign_checkpoint(
            session, resources.signing_key, origin=resources.settings.audit_origin
        )
        return checkpoint.size if checkpoint else 0


@shared_task(name="erasure.shred_expired", base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def shred_expired(self: ErasureTask) -> int:
    """Crypto-shred the identifiers of requests whose retention period has ended."""
    days = self.resources().settings.retention_days
    total = 0
    with self.new_session() as session:
        while count := retention.shred_expired(session, retention=timedelta(days=days)):
            session.commit()
            total += count
    return total
