"""End to end through real Celery worker processes on a real Redis, against the sandbox."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from erasure.audit.models import AuditLeaf
from erasure.core.models import RequestStatus
from erasure.observability.heartbeats import BEAT
from erasure.observability.models import Heartbeat
from tests.support.pipeline import World, wait_final
from tests.support.processes import Worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_requests_complete_through_a_real_worker(
    make_world: Callable[..., World], make_worker: Callable[..., Worker]
) -> None:
    world = make_world(credentials=2, max_ids_per_call=10)
    make_worker()
    # No relay from the test: the intake transaction only wrote the outbox; the worker's
    # periodic relay publishes it (a crash between commit and publish loses nothing).
    ids = [world.submit(f"+1415555{n:04d}") for n in (1, 2, 3, 9)]
    statuses = wait_final(world, ids, timeout=60)
    assert [statuses[i] for i in ids] == [
        RequestStatus.COMPLETED,
        RequestStatus.COMPLETED,
        RequestStatus.COMPLETED,
        RequestStatus.FAILED,  # a blocking child record
    ]
    with world.session() as session:
        completions = session.scalar(
            select(func.count())
            .select_from(AuditLeaf)
            .where(
                AuditLeaf.request_id.in_(ids),
                AuditLeaf.kind.in_(("request.completed", "request.failed")),
            )
        )
    assert completions == 4
    accepted = world.sandbox.org.accepted_ids["delete_participants"]
    assert len(accepted) == len(set(accepted)) == 4


def _beat_child(world: World, worker: Worker, *, not_pid: int = 0, timeout: float = 60) -> int:
    """The pid of the worker's embedded beat: a child of the worker that stamps beat's heartbeat
    (`host:pid`), other than `not_pid`. Waits until there is one."""
    deadline = time.monotonic() + timeout
    while True:
        with world.session() as session:
            instances = session.scalars(
                select(Heartbeat.instance).where(Heartbeat.component == BEAT)
            ).all()
        stamped = {int(instance.rsplit(":", 1)[1]) for instance in instances}
        beats = (stamped & set(worker.children())) - {not_pid}
        if beats:
            return beats.pop()
        assert time.monotonic() < deadline, "the worker runs no beat"
        time.sleep(0.2)


def test_a_killed_embedded_beat_is_started_again(
    make_world: Callable[..., World], make_worker: Callable[..., Worker]
) -> None:
    """`worker --beat` runs beat in a child process. Killed (kill -9, the OOM killer), it left
    the worker consuming with nothing to tick: no relay, no dispatch, every new request stuck in
    received. Seen in the reliability test on a busy machine, where a child's kill hit beat."""
    world = make_world(credentials=1, max_ids_per_call=10)
    worker = make_worker()
    first = _beat_child(world, worker)
    os.kill(first, signal.SIGKILL)
    # Submitted without a relay: only a beat's periodic relay publishes it.
    ids = [world.submit("+14155550001")]
    statuses = wait_final(world, ids, timeout=60)
    assert statuses[ids[0]] == RequestStatus.COMPLETED
    second = _beat_child(world, worker, not_pid=first)
    # A worker told to stop (its process group left alone) stops the beat it started too.
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(60)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{second}").exists():
        assert time.monotonic() < deadline, "the second beat outlived its worker"
        time.sleep(0.1)
