"""A request flows end to end against the sandbox over HTTPS: resolve, schedule, delete, confirm."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import func, select

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, RequestStatus, TargetStatus
from erasure.pipeline.models import Alert
from tests.support.pipeline import FAST, World


def _leaves(world: World, request_id: object) -> list[dict[str, object]]:
    with world.session() as session:
        rows = session.scalars(
            select(AuditLeaf).where(AuditLeaf.request_id == request_id).order_by(AuditLeaf.id)
        )
        return [json.loads(row.leaf) for row in rows]


def test_a_demo_subject_is_deleted_and_confirmed(world: World) -> None:
    request_id = world.submit("+14155550001")  # web chat user: found by its contact's phone
    world.wait_for([request_id])
    targets = world.targets(request_id)
    assert [t.status for t in targets] == [TargetStatus.DELETED]
    assert targets[0].log_id and targets[0].log_status == "COMPLETED"
    assert world.sandbox.org.accepted_ids["delete_participants"] == [targets[0].salesforce_id]
    kinds = [leaf["kind"] for leaf in _leaves(world, request_id)]
    assert kinds[:3] == ["request.received", "request.resolving", "request.resolved"]
    assert "targets.requested" in kinds
    assert "target.deleted" in kinds
    assert kinds[-1] == "request.completed"
    final = next(leaf for leaf in _leaves(world, request_id) if leaf["kind"] == "target.deleted")
    data = final["data"]
    assert isinstance(data, dict)
    assert data["log_id"] == targets[0].log_id
    assert data["log_status"] == "COMPLETED"
    assert data["read_back"] == "absent"


def test_no_record_means_completed_no_data(world: World) -> None:
    request_id = world.submit("+14155559999")
    world.wait_for([request_id], [RequestStatus.COMPLETED_NO_DATA])
    assert world.calls() == []


def test_a_blocking_child_fails_the_target_with_salesforces_reason(world: World) -> None:
    request_id = world.submit("+14155550009")
    world.wait_for([request_id], [RequestStatus.FAILED])
    (target,) = world.targets(request_id)
    assert target.status is TargetStatus.FAILED
    assert target.failure_reason
    with world.session() as session:
        request = session.get(ErasureRequest, request_id)
        assert request is not None
        assert request.outcome and "could not be deleted" in request.outcome


def test_open_session_waits_without_spending_a_call_then_goes(world: World) -> None:
    request_id = world.submit("+14155550006")
    for _ in range(5):
        world.step()
    (target,) = world.targets(request_id)
    assert target.status is TargetStatus.BLOCKED_OPEN_SESSION
    assert world.sandbox.org.call_count("delete_participants") == 0
    with world.sandbox.org.lock:
        for row in world.sandbox.org.data.tables["MessagingSession"].values():
            row["Status"] = "Ended"
    world.wait_for([request_id])


def test_leaves_hold_no_personal_data(world: World) -> None:
    request_id = world.submit("+14155550002")
    world.wait_for([request_id])
    (target,) = world.targets(request_id)
    blob = json.dumps(_leaves(world, request_id))
    assert "4155550002" not in blob
    assert target.salesforce_id is not None
    assert target.salesforce_id[:15] not in blob


def test_a_log_that_never_becomes_final_is_flagged_for_a_person(
    make_world: Callable[..., World],
) -> None:
    """docs/salesforce.md rule 7: a status that stays non-final (or unknown) is polled on, and a timeout
    flags the target for a person."""
    world = make_world(tunables=replace(FAST, log_final_timeout_s=0.5))
    world.sandbox.org.configure(log_step_s=10_000.0)  # the log stays REQUESTED
    request_id = world.submit("+14155550003")
    world.wait_for([request_id], (RequestStatus.DELETING, RequestStatus.CONFIRMING))
    deadline = time.monotonic() + 20
    alerts: list[Alert] = []
    while not alerts and time.monotonic() < deadline:
        world.step()
        with world.session() as session:
            alerts = list(
                session.scalars(
                    select(Alert).where(
                        Alert.request_id == request_id, Alert.kind == "target_not_final"
                    )
                )
            )
        time.sleep(0.1)
    assert len(alerts) == 1 and alerts[0].resolved_at is None
    assert "4155550003" not in alerts[0].message
    world.step()
    world.step()
    with world.session() as session:  # one alert, however often it is polled
        assert (
            session.scalar(
                select(func.count()).select_from(Alert).where(Alert.request_id == request_id)
            )
            == 1
        )
    assert [t.status for t in world.targets(request_id)] in (
        [TargetStatus.REQUESTED],
        [TargetStatus.IN_PROGRESS],
    )
