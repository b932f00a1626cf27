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
from tests.support.pipeline import World, wait_final
from tests.support.processes import RedisServer, Worker

# The wait below may run up to WAIT_AT_MOST_S while the pipeline moves: past the suite's default
# per-test timeout, which would end the test without its diagnostics.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(600)]

SUBJECTS = 40
#: Give up once no request and no target has moved for this long ...
STUCK_AFTER_S = 60.0
#: ... or after this long in all. On a machine loaded 15 times over its cores the workers take
#: their turns with everything else: the requests finish late, and they do finish. What this
#: test must catch is a request that stops moving (lost, or double-sent and failed), not speed.
WAIT_AT_MOST_S = 420.0


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
    waited = time.monotonic()
    statuses = wait_final(world, submitted, timeout=STUCK_AFTER_S, at_most=WAIT_AT_MOST_S)
    waited = time.monotonic() - waited
    assert Counter(statuses.values()) == {RequestStatus.COMPLETED: SUBJECTS}, describe_stuck(
        world, statuses, workers, waited=waited
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
    world: World, statuses: dict[uuid.UUID, RequestStatus], workers: list[Worker], *, waited: float
) -> str:
    """What a failure needs to be explained: how long the wait ran, what the sandbox received,
    each unfinished request's targets and delete calls, and the errors the workers logged."""
    stuck = [rid for rid, status in statuses.items() if not status.is_terminal]
    counters = world.sandbox.org.counters()
    lines = [
        f"statuses: {Counter(statuses.values())} after waiting {waited:.0f} s",
        f"unfinished: {len(stuck)}",
        "sandbox calls: "
        + ", ".join(f"{route}={sum(n.values())}" for route, n in counters["calls"].items()),
        f"sandbox accepted ids: { {r: len(ids) for r, ids in counters['accepted_ids'].items()} }",
    ]
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
        for log in sorted(worker.workdir.glob(f"worker-{worker.name}{worker.label}.*.log")):
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
            ]
            lines.append(f"{log.name}: {len(errors)} error lines")
            lines.extend(f"    {line[:300]}" for line in errors[-15:])
    return "\n".join(lines)
