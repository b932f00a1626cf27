"""A poison message, through a real worker: a request whose resolve keeps failing is tried
`ERASURE_MAX_TASK_DELIVERIES` times (Celery really redelivers it), then parked for a person with a
`parked_message` alert; the sweeper leaves the parked request alone; once the cause is fixed,
`POST /v1/erasure-requests/{id}/retry` (over real HTTP) un-parks it and it completes.

The failure is an org misconfiguration rather than a mock: the org's only credential is switched
off, so every lookup raises the (retryable) `NoCredentialError` at once, deterministically and only
for this org's requests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.core.models import Credential, ErasureRequest, RequestStatus
from erasure.pipeline.models import Alert, TaskDelivery
from erasure.pipeline.sweep import PARKED
from tests.support.pipeline import World, wait_final
from tests.support.processes import RedisServer, Worker, worker_env
from tests.support.web import Committed, LiveServer

pytestmark = [pytest.mark.worker, pytest.mark.slow]

MAX_DELIVERIES = 3
STALL_S = 6.0


@pytest.fixture
def poison_worker(
    settings: Settings, database_url: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Worker]:
    env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
    env["ERASURE_MAX_TASK_DELIVERIES"] = str(MAX_DELIVERIES)
    # Longer than a retry's countdown (capped at stall/2), so the sweeper does not race the
    # redeliveries; short enough to watch the sweeper skip the parked request.
    env["ERASURE_STALL_S"] = str(STALL_S)
    worker = Worker(env, tmp_path)
    worker.start()
    yield worker
    worker.kill_all()


def poll(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def resolving_leaves(world: World, request_id: uuid.UUID) -> int:
    with world.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditLeaf)
                .where(AuditLeaf.request_id == request_id, AuditLeaf.kind == "request.resolving")
            )
            or 0
        )


def sweeps_done(worker: Worker) -> int:
    return sum(
        log.read_text(errors="replace").count("Task erasure.sweep[")
        for log in worker.workdir.glob("worker-*.log")
    )


def test_a_poison_message_is_parked_skipped_by_the_sweeper_and_unparked_by_retry(
    make_world: Callable[..., World],
    poison_worker: Worker,
    live_server: LiveServer,
    committed: Committed,
) -> None:
    world = make_world()
    with world.session() as session, session.begin():
        session.execute(
            update(Credential).where(Credential.org_id == world.org_id).values(is_active=False)
        )
    request_id = world.submit("+14155550001")

    # Parked: an open alert naming the request, and the message's delivery row marked parked
    # after exactly MAX_DELIVERIES deliveries (each one a real claim and a failed lookup).
    def parked_alert() -> Alert | None:
        with world.session() as session:
            return session.scalar(
                select(Alert).where(
                    Alert.request_id == request_id,
                    Alert.kind == PARKED,
                    Alert.resolved_at.is_(None),
                )
            )

    alert = poll(parked_alert, timeout=60, what="the parked_message alert")
    assert isinstance(alert, Alert)
    assert "erasure.resolve parked after NoCredentialError" in alert.message
    with world.session() as session:
        parked = session.scalars(
            select(TaskDelivery).where(
                TaskDelivery.task_name == "erasure.resolve", TaskDelivery.parked_at.is_not(None)
            )
        ).all()
        misconfigured = session.scalar(
            select(func.count())
            .select_from(Alert)
            .where(Alert.org_id == world.org_id, Alert.kind == "org_has_no_credentials")
        )
    assert MAX_DELIVERIES in [row.deliveries for row in parked]
    assert misconfigured == 1  # the cause is alerted too, once
    tries = resolving_leaves(world, request_id)
    assert tries >= MAX_DELIVERIES
    assert world.status(request_id) is RequestStatus.RESOLVING

    # The sweeper skips it: wait until the request has been idle past the stall period and two
    # more sweeps have run (the worker's log says so); nobody claimed it again.
    with world.session() as session:
        request = session.get(ErasureRequest, request_id)
        assert request is not None
        idle_since = request.updated_at
    poll(
        lambda: time.time() > idle_since.timestamp() + STALL_S + 1,
        timeout=60,
        what="the stall period",
    )
    seen = sweeps_done(poison_worker)
    poll(lambda: sweeps_done(poison_worker) >= seen + 2, timeout=60, what="two sweeps")
    assert resolving_leaves(world, request_id) == tries
    assert world.status(request_id) is RequestStatus.RESOLVING
    assert world.sandbox.org.call_count("query") == 0

    # A person fixes the cause and retries through the API: the alert closes, the request runs.
    with world.session() as session, session.begin():
        session.execute(
            update(Credential).where(Credential.org_id == world.org_id).values(is_active=True)
        )
    response = requests.post(
        f"{live_server.url}/v1/erasure-requests/{request_id}/retry",
        json={},
        headers=committed.headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert parked_alert() is None
    statuses = wait_final(world, [request_id], timeout=60)
    assert statuses[request_id] is RequestStatus.COMPLETED
    accepted = world.sandbox.org.accepted_ids["delete_participants"]
    assert len(accepted) == len(set(accepted)) == 1
