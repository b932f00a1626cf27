"""The quota scheduler against the sandbox: packing, deadlines first, the quota window from
`delete_calls`, reconciliation of ambiguous calls, 429 and 404 pauses, orphaned calls."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    Org,
    Regulation,
    RequestStatus,
)
from erasure.pipeline import quota, resolve, scheduler
from erasure.pipeline.models import Alert
from erasure.salesforce.sandbox import Fault
from tests.support.pipeline import FAST, World

# Demo subjects with no open session and no blocking child (docs/salesforce.md).
CLEAN = [1, 2, 3, 4, 5, 7, 8, 10, 11, 13, 14, 15, 16, 17]


def phone(n: int) -> str:
    return f"+1415555{n:04d}"


def resolve_all(world: World, request_ids: list[uuid.UUID]) -> None:
    world.relay()
    statuses = {world.status(r) for r in request_ids}
    assert statuses == {RequestStatus.DELETING}, statuses


def accepted(world: World) -> list[str]:
    return list(world.sandbox.org.accepted_ids.get("delete_participants", []))


def test_backlog_is_packed_into_full_calls_earliest_deadline_first(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_ids_per_call=3)
    late = [world.submit(phone(n)) for n in CLEAN[:6]]  # GDPR: a month
    urgent = world.submit(phone(CLEAN[6]), regulation=Regulation.LGPD)  # 15 days
    resolve_all(world, [*late, urgent])
    scheduler.dispatch(world.ctx)
    calls = world.calls()
    assert [c.ids_count for c in calls] == [3, 3, 1]
    (urgent_target,) = world.targets(urgent)
    assert urgent_target.delete_call_id == calls[0].id
    assert len(accepted(world)) == len(set(accepted(world))) == 7
    world.wait_for([*late, urgent])


def test_quota_window_is_never_exceeded_and_spreads_over_the_pool(
    make_world: Callable[..., World],
) -> None:
    world = make_world(credentials=2, max_ids_per_call=1, delete_calls_per_window=2, window_s=3600)
    requests = [world.submit(phone(n)) for n in CLEAN[:6]]
    resolve_all(world, requests)
    for _ in range(3):
        scheduler.dispatch(world.ctx)
    calls = world.calls()
    assert len(calls) == 4  # 2 credentials x 2 per window
    assert Counter(c.credential_id for c in calls) == dict.fromkeys(world.credential_ids, 2)
    assert world.sandbox.org.call_count("delete_participants") == 4  # and no 429


def test_the_window_slides_and_counts_a_call_still_in_flight(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_ids_per_call=1, delete_calls_per_window=2, window_s=2)
    with world.session() as session, session.begin():
        # A call whose dispatcher died before recording its outcome: it counts (fail closed).
        session.add(
            DeleteCall(
                org_id=world.org_id,
                credential_id=world.credential_ids[0],
                route=DeleteRoute.PARTICIPANTS,
                status=DeleteCallStatus.SENDING,
                ids_count=1,
                sent_at=world.ctx.clock() - timedelta(hours=1),
            )
        )
    with world.session() as session:
        org = session.get(Org, world.org_id)
        assert org is not None
        used = quota.quota(
            session, org, world.credential_ids[0], DeleteRoute.PARTICIPANTS, world.ctx.clock()
        )
        assert used.used == 1
        assert used.left == 1


def test_ambiguous_5xx_after_the_logs_exist_is_reconciled_not_resent(world: World) -> None:
    world.sandbox.org.inject(Fault(route="delete_participants", status=503, when="after"))
    request_id = world.submit(phone(1))
    world.wait_for([request_id])
    assert len(accepted(world)) == 1  # the id was accepted once, by the failed call
    assert world.sandbox.org.call_count("delete_participants") == 1
    assert [c.status for c in world.calls()] == [DeleteCallStatus.RECONCILED]


def test_5xx_before_anything_happened_is_reconciled_then_resent(world: World) -> None:
    world.sandbox.org.inject(Fault(route="delete_participants", status=502, when="before"))
    request_id = world.submit(phone(2))
    world.wait_for([request_id])
    assert len(accepted(world)) == 1
    assert [c.status for c in world.calls()] == [
        DeleteCallStatus.RECONCILED,
        DeleteCallStatus.ACCEPTED,
    ]


def test_429_pauses_the_credential_for_every_worker(make_world: Callable[..., World]) -> None:
    world = make_world(max_ids_per_call=1)
    world.sandbox.org.configure(delete_limit=1)  # the org allows fewer calls than we believe
    requests = [world.submit(phone(n)) for n in CLEAN[:3]]
    resolve_all(world, requests)
    scheduler.dispatch(world.ctx)
    calls = world.calls()
    assert [c.http_status for c in calls] == [202, 429]
    with world.session() as session:
        credential = session.get(Credential, world.credential_ids[0])
        assert credential is not None
        assert credential.paused_until is not None
        assert credential.paused_until > world.ctx.clock()
    scheduler.dispatch(world.ctx)
    assert len(world.calls()) == 2  # paused: nothing more sent
    assert world.sandbox.org.call_count("delete_participants") == 2


def test_404_pauses_the_org_and_alerts(world: World) -> None:
    world.sandbox.org.configure(api_enabled=False)
    request_id = world.submit(phone(3))
    world.relay()
    with world.clock.hold():  # however slow the machine, the pause has not run out in between
        scheduler.dispatch(world.ctx)
        scheduler.dispatch(world.ctx)
    assert [c.http_status for c in world.calls()] == [404]  # the org paused after the first
    with world.session() as session:
        org = session.get(Org, world.org_id)
        assert org is not None
        assert org.paused_until is not None
        assert (
            session.scalar(
                select(func.count())
                .select_from(Alert)
                .where(Alert.org_id == world.org_id, Alert.kind == "org_paused")
            )
            == 1
        )
    world.sandbox.org.configure(api_enabled=True)
    world.clock.advance(FAST.org_fault_pause_s)
    world.wait_for([request_id])


def test_a_dispatcher_that_died_after_sending_is_reconciled_without_resending(
    world: World,
) -> None:
    request_id = world.submit(phone(4))
    world.relay()
    planned = scheduler.plan_call(
        world.ctx, world.org_id, DeleteRoute.PARTICIPANTS, scheduler.DispatchReport()
    )
    assert planned is not None
    assert not isinstance(planned, str)
    _call_id, client, batch = planned
    client.delete_participants(batch)  # ... and the process dies before recording the 202
    with world.clock.hold():
        scheduler.dispatch(world.ctx)
    assert world.sandbox.org.call_count("delete_participants") == 1  # still in flight: waits
    world.clock.advance(FAST.orphan_after_s)
    world.wait_for([request_id])
    assert len(accepted(world)) == 1


def test_a_dispatcher_that_died_before_sending_is_resent(world: World) -> None:
    request_id = world.submit(phone(5))
    world.relay()
    planned = scheduler.plan_call(
        world.ctx, world.org_id, DeleteRoute.PARTICIPANTS, scheduler.DispatchReport()
    )
    assert planned is not None
    world.clock.advance(FAST.orphan_after_s)
    world.wait_for([request_id])
    assert len(accepted(world)) == 1
    assert world.sandbox.org.call_count("delete_participants") == 1


def test_a_duplicate_or_late_resolve_message_changes_nothing(world: World) -> None:
    request_id = world.submit(phone(7))
    assert resolve.resolve(world.ctx, request_id, 0) is resolve.Outcome.RESOLVED
    assert resolve.resolve(world.ctx, request_id, 0) is resolve.Outcome.STALE
    assert resolve.resolve(world.ctx, request_id, 1) is resolve.Outcome.DONE
    with world.session() as session:
        kinds = Counter(
            session.scalars(select(AuditLeaf.kind).where(AuditLeaf.request_id == request_id))
        )
    assert kinds["request.resolving"] == 1
    assert kinds["request.resolved"] == 1
