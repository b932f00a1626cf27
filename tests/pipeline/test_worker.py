"""End to end through real Celery worker processes on a real Redis, against the sandbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from erasure.audit.models import AuditLeaf
from erasure.core.models import RequestStatus
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
