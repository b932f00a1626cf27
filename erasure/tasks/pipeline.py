"""The pipeline's tasks: resolve a request (with its retry and park rules), and the periodic
dispatch, confirm, sweep and predict ticks. Each calls erasure.pipeline and relays the outbox."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import redis
from celery import shared_task
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from erasure import task_names
from erasure.celery_app import ErasureTask, relay_quietly
from erasure.pipeline import confirm as confirm_step
from erasure.pipeline import resolve as resolve_step
from erasure.pipeline import scheduler, sweep
from erasure.pipeline.context import Pipeline
from erasure.salesforce.errors import SalesforceError

logger = logging.getLogger(__name__)

RESOLVE_MAX_RETRIES = 5


@shared_task(  # type: ignore[untyped-decorator]
    name=task_names.RESOLVE,
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
        outcome = resolve_step.record(ctx, claimed, *resolve_step.find(ctx, claimed))
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
        relay_quietly(self)
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


@shared_task(name=task_names.DISPATCH, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def dispatch(self: ErasureTask) -> int:
    """One pass of the quota scheduler (a no-op while another dispatcher runs)."""
    report = scheduler.dispatch(self.pipeline())
    relay_quietly(self)
    return report.calls


@shared_task(name=task_names.CONFIRM, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def confirm(self: ErasureTask) -> int:
    """Poll logs and read back sent targets whose check is due."""
    report = confirm_step.confirm(self.pipeline())
    relay_quietly(self)
    return report.checked


@shared_task(name=task_names.SWEEP, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def sweep_stalled(self: ErasureTask) -> int:
    """Re-publish stalled work; forget old delivery counts."""
    ctx = self.pipeline()
    touched = sweep.sweep(ctx)
    sweep.purge_deliveries(ctx, older_than=ctx.clock() - timedelta(days=1))
    relay_quietly(self)
    return touched


@shared_task(name=task_names.PREDICT, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def predict(self: ErasureTask) -> int:
    """Refresh predicted completion times and "deadline at risk" flags."""
    return sweep.predict(self.pipeline())
