"""Nothing accepted is ever lost: kill -9 workers (children and parents) at random points under a
stream of requests, flush and restart the broker mid-run; every request still ends exactly once,
and the sandbox never accepts an id twice."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from erasure.audit.models import AuditLeaf
from erasure.core.models import DeleteCall, IdentifierKind, RequestStatus, Target
from erasure.salesforce.sandbox import add_end_user
from tests.pipeline.conftest import World
from tests.pipeline.harness import RedisServer, Worker
from tests.pipeline.test_worker import wait_final

pytestmark = [pytest.mark.worker, pytest.mark.slow]

SUBJECTS = 40


def test_kill_9_and_broker_flush_under_a_stream_lose_nothing_and_double_nothing(
    make_world: Callable[..., World],
    make_worker: Callable[..., Worker],
    redis_server: RedisServer,
) -> None:
    rng = random.Random(20261125)
    world = make_world(credentials=2, max_ids_per_call=5, delete_calls_per_window=100, window_s=10)
    world.sandbox.org.configure(hour_s=10, delete_limit=100, log_step_s=0.2)
    tag = uuid.uuid4().hex[:6]
    emails = [f"load{n}.{tag}@example.com" for n in range(SUBJECTS)]
    with world.sandbox.org.lock:
        for n, email in enumerate(emails):
            add_end_user(world.sandbox.org.data, platform_key=f"load-{tag}-{n}", email=email)
    workers = [make_worker(), make_worker(beat=False)]
    submitted: list[uuid.UUID] = []
    kills = Counter[str]()
    next_chaos = time.monotonic() + 1.0
    flushed = False
    for n, email in enumerate(emails):
        submitted.append(world.submit(email, kind=IdentifierKind.EMAIL))
        time.sleep(rng.uniform(0.05, 0.3))
        if time.monotonic() >= next_chaos:
            worker = rng.choice(workers)
            if rng.random() < 0.5 and worker.kill_child():
                kills["child"] += 1
            else:
                worker.kill_all()
                worker.start()
                kills["parent"] += 1
            next_chaos = time.monotonic() + rng.uniform(0.5, 2.0)
        if n == SUBJECTS // 2 and not flushed:
            redis_server.flush_and_restart()
            flushed = True
    assert kills["child"] + kills["parent"] >= 3
    statuses = wait_final(world, submitted, timeout=150)
    assert Counter(statuses.values()) == {RequestStatus.COMPLETED: SUBJECTS}, describe_stuck(
        world, statuses, workers
    )
    with world.session() as session:
        completions = Counter(
            session.scalars(
                select(AuditLeaf.request_id).where(
                    AuditLeaf.request_id.in_(submitted), AuditLeaf.kind == "request.completed"
                )
            )
        )
    assert set(completions.values()) == {1}
    assert len(completions) == SUBJECTS
    accepted = world.sandbox.org.accepted_ids["delete_participants"]
    assert len(accepted) == len(set(accepted)) == SUBJECTS


def describe_stuck(
    world: World, statuses: dict[uuid.UUID, RequestStatus], workers: list[Worker]
) -> str:
    """What a failure needs to be explained: each unfinished request's targets and delete calls,
    and the errors the workers logged."""
    stuck = [rid for rid, status in statuses.items() if not status.is_terminal]
    lines = [f"statuses: {Counter(statuses.values())}", f"unfinished: {len(stuck)}"]
    with world.session() as session:
        rows = session.execute(
            select(Target, DeleteCall)
            .outerjoin(DeleteCall, DeleteCall.id == Target.delete_call_id)
            .where(Target.request_id.in_(stuck))
        ).all()
        for target, call in rows:
            lines.append(
                f"  request {target.request_id} {statuses[target.request_id]}: target "
                f"{target.status} attempt={target.attempt}; call "
                + (
                    "none"
                    if call is None
                    else f"{call.id} {call.status} http={call.http_status} sent={call.sent_at} "
                    f"finished={call.finished_at}"
                )
            )
    for worker in workers:
        for log in sorted(worker.workdir.glob(f"worker-{worker.name}*.log")):
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
            ]
            lines.append(f"{log.name}: {len(errors)} error lines")
            lines.extend(f"    {line[:300]}" for line in errors[-15:])
    return "\n".join(lines)
