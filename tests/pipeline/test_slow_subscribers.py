"""A callback subscriber that never answers must not slow deletions down (issue: one dead
subscriber and 40 requests turned a 6 s deletion into 7 min 25 s, because callback deliveries
held the worker slots the pipeline needed).

Real processes throughout: a pipeline worker with beat and a deliveries worker, each consuming
its own queue on a private redis-server, the test database, the Salesforce sandbox over HTTPS,
and ten subscribers on 127.0.0.1 that never answer (sockets that never accept a connection)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import delete, func, select

from erasure import workflow
from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, IdentifierKind, Regulation, RequestStatus, Source
from erasure.identifiers import normalize
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackDelivery,
    CallbackSubscription,
    DeliveryCircuit,
    IntegrationCursor,
)
from erasure.integrations.transport import AddressGuard, destination_of
from erasure.worker_pools import DELIVERIES, PIPELINE
from tests.support.integrations import LOOPBACK
from tests.support.pipeline import World
from tests.support.processes import Worker
from tests.support.receivers import blackhole

pytestmark = [pytest.mark.worker, pytest.mark.slow]

DEAD_SUBSCRIBERS = 10
#: The issue asks for "within 2x of the time with none": the one timing assertion of the suite.
#: On a busy 2-core machine a deletion that takes 3 s can take 6 s for reasons of its own, so the
#: baseline is never taken as less than this floor.
BASELINE_FLOOR_S = 10.0
COMPLETION_TIMEOUT_S = 240.0
#: Demo subjects (docs/salesforce.md) that complete: no open session (every 6th), no blocking
#: child record (every 9th). 1 and 2 are measured, 3 warms up.
WAVE_BEFORE = (4, 5, 7)
WAVE_WITH = (8, 10, 11)


def _phones(subjects: tuple[int, ...]) -> list[str]:
    return [f"+1415555{n:04d}" for n in subjects]


def _submit(world: World, key_id: uuid.UUID, phone: str) -> uuid.UUID:
    with world.session() as session, session.begin():
        request = workflow.submit_request(
            session,
            workflow.Submission(
                identifiers=[
                    workflow.Identifier(
                        IdentifierKind.PHONE, normalize(IdentifierKind.PHONE, phone)
                    )
                ],
                regulation=Regulation.GDPR,
                source=Source.API,
                org=world.org_name,
                api_key_id=key_id,
            ),
            protection=workflow.Protection(world.ctx.vault, world.ctx.pseudonym_key),
            default_org=None,
        )
        return request.id


def _seconds_to_complete(world: World, key_id: uuid.UUID, phone: str) -> float:
    """Submit a demo request and wait for it to end; submit-to-completed as the database
    recorded it (created_at, completed_at), so the test's polling adds nothing to it."""
    request_id = _submit(world, key_id, phone)
    deadline = time.monotonic() + COMPLETION_TIMEOUT_S
    while not world.status(request_id).is_terminal:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the request did not finish within {COMPLETION_TIMEOUT_S:.0f} s "
                f"(status {world.status(request_id).value})"
            )
        time.sleep(0.1)  # polling a condition (the request's status), not waiting for time
    with world.session() as session:
        request = session.get(ErasureRequest, request_id)
        assert request is not None
        assert request.status is RequestStatus.COMPLETED, request.outcome
        assert request.completed_at is not None
        return (request.completed_at - request.created_at).total_seconds()


def _complete_all(world: World, key_id: uuid.UUID, phones: list[str]) -> None:
    ids = [_submit(world, key_id, phone) for phone in phones]
    _wait_for(
        lambda: all(world.status(i).is_terminal for i in ids),
        "the wave of requests to end",
        timeout=COMPLETION_TIMEOUT_S,
    )


def _attempted(world: World, subscription_ids: list[uuid.UUID]) -> int:
    with world.session() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    CallbackDelivery.subscription_id.in_(subscription_ids),
                    CallbackDelivery.attempts > 0,
                )
            )
            or 0
        )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    # Two execution users: 20 delete calls an hour, more than this test's 9 requests can use.
    return make_world(credentials=2)


@pytest.fixture
def integration_key(world: World) -> Iterator[uuid.UUID]:
    with world.session() as session, session.begin():
        key = create_api_key(session, name="slow subscribers", role=Role.INTEGRATION).record
        session.flush()
        key_id = key.id
        # The dispatcher starts after what earlier tests left in this database.
        last = session.scalar(select(func.max(AuditLeaf.id))) or 0
        session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    yield key_id
    with world.session() as session, session.begin():
        urls = select(CallbackSubscription.url).where(CallbackSubscription.api_key_id == key_id)
        session.execute(
            delete(DeliveryCircuit).where(
                DeliveryCircuit.destination.in_(
                    [destination_of(url) for url in session.scalars(urls)]
                )
            )
        )
        session.execute(
            delete(CallbackSubscription).where(CallbackSubscription.api_key_id == key_id)
        )
        session.execute(delete(ErasureRequest).where(ErasureRequest.api_key_id == key_id))
        session.execute(delete(ApiKey).where(ApiKey.id == key_id))


def test_ten_unreachable_subscribers_leave_a_deletion_within_twice_its_time(
    world: World,
    integration_key: uuid.UUID,
    make_worker: Callable[..., Worker],
) -> None:
    extra_env = {"ERASURE_CALLBACK_ALLOWED_NETWORKS": ",".join(LOOPBACK)}
    pipeline = make_worker(pool=PIPELINE, beat=True, extra_env=extra_env)
    deliveries = make_worker(pool=DELIVERIES, beat=False, extra_env=extra_env)

    # Warm up (worker start, beat's first ticks, Salesforce tokens), then the baseline: a wave
    # of requests, then the measured one.
    _complete_all(world, integration_key, ["+14155550003"])
    _complete_all(world, integration_key, _phones(WAVE_BEFORE))
    baseline = _seconds_to_complete(world, integration_key, "+14155550001")

    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(blackhole()) for _ in range(DEAD_SUBSCRIBERS)]
        with world.session() as session, session.begin():
            subscription_ids = [
                callbacks.subscribe(
                    session,
                    url=url,
                    vault=world.ctx.vault,
                    guard=AddressGuard.allowing(LOOPBACK),
                    api_key_id=integration_key,
                )[0].id
                for url in urls
            ]
        # The same wave: its events become deliveries to the dead subscribers (about 150), and
        # the measured request starts once they are being tried.
        _complete_all(world, integration_key, _phones(WAVE_WITH))
        _wait_for(lambda: _attempted(world, subscription_ids) > 0, "a delivery attempt")
        with_dead_subscribers = _seconds_to_complete(world, integration_key, "+14155550002")
    # Each worker ran only its own queue's tasks.
    pipeline_log, deliveries_log = pipeline.log_path.read_text(), deliveries.log_path.read_text()
    assert "Task erasure.resolve[" in pipeline_log and "erasure.send_callbacks[" not in pipeline_log
    assert "Task erasure.send_callbacks[" in deliveries_log
    assert "erasure.resolve[" not in deliveries_log and "erasure.dispatch[" not in deliveries_log

    limit = 2 * max(baseline, BASELINE_FLOOR_S)
    assert with_dead_subscribers <= limit, (
        f"with {DEAD_SUBSCRIBERS} unreachable subscribers the deletion took "
        f"{with_dead_subscribers:.1f} s; without, {baseline:.1f} s (limit {limit:.1f} s)"
    )
