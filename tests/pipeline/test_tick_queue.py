"""The periodic ticks (dispatch, confirm, the audit sequencer...) never wait behind lookups.

A soak of 500 requests found deletions stalled while lookups queued: beat's ticks shared the
pipeline queue with the resolve messages and expire after a few seconds, so behind a backlog of
lookups every confirm tick was dropped unrun and a request whose delete call was already sent
waited for the whole backlog to drain. A queue of their own that the same worker also consumes
is not enough either: with both slots held by slow lookups, ticks arrive faster than slots free
and still expire. Ticks have their own queue and their own worker.

Real processes: a pipeline worker with beat on a private redis-server, the test database, the
Salesforce sandbox over HTTPS answering every lookup a second late."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from erasure.core.models import RequestStatus
from erasure.salesforce.models import Route
from erasure.salesforce.sandbox.limits import Fault
from erasure.worker_pools import PIPELINE, TICKS
from tests.support.pipeline import World
from tests.support.processes import Worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]

#: Lookups queued behind the measured request's confirmation: with a second per lookup and two
#: slots, at least half a minute of work.
BACKLOG = 60
TIMEOUT_S = 240.0


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition, not waiting for time


def _open(world: World, request_ids: list[uuid.UUID]) -> int:
    return sum(1 for rid in request_ids if not world.status(rid).is_terminal)


def test_a_sent_deletion_completes_while_lookups_are_still_queued(
    world: World, make_worker: Callable[..., Worker]
) -> None:
    # As standalone and docker-compose run them: beat's ticks have workers of their own.
    make_worker(pool=PIPELINE, beat=True)
    make_worker(pool=TICKS, beat=False)
    warm = world.submit("+14155550003")  # worker start, beat's first ticks, tokens
    _wait_for(lambda: world.status(warm).is_terminal, "the warm-up request")
    assert world.status(warm) is RequestStatus.COMPLETED

    org = world.sandbox.org
    with org.lock:
        # Logs take several confirm rounds to finish: each round needs a confirm tick.
        org.config.log_step_s = 2.0
    measured = world.submit("+14155550001")
    _wait_for(
        lambda: world.status(measured) in (RequestStatus.CONFIRMING, RequestStatus.COMPLETED),
        "the measured request's delete call",
    )

    # Then a backlog of lookups (unknown subjects), each a second slow at the sandbox.
    for route in (Route.QUERY, Route.SEARCH):
        org.inject(Fault(route=route, count=10 * BACKLOG, status=None, latency_s=1.0))
    backlog = [world.submit(f"+1415555{9000 + n:04d}") for n in range(BACKLOG)]
    _wait_for(lambda: world.status(measured).is_terminal, "the measured request to end")
    still_open = _open(world, backlog)

    assert world.status(measured) is RequestStatus.COMPLETED
    # Its confirmation did not wait for the lookups queued after it.
    assert still_open >= BACKLOG // 6, (
        f"only {still_open} of {BACKLOG} lookups were still open when the deletion completed"
    )
