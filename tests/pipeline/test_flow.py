"""A request flows end to end against the sandbox over HTTPS: resolve, schedule, delete, confirm."""

from __future__ import annotations

import json

from sqlalchemy import select

from erasure.models import AuditLeaf, ErasureRequest, RequestStatus, TargetStatus
from tests.pipeline.conftest import World


def _leaves(world: World, request_id: object) -> list[dict[str, object]]:
    with world.session() as session:
        rows = session.scalars(
            select(AuditLeaf).where(AuditLeaf.request_id == request_id).order_by(AuditLeaf.id)
        )
        return [json.loads(row.leaf) for row in rows]


def test_a_demo_subject_is_deleted_and_confirmed(world: World) -> None:
    request_id = world.submit("+14155550001")  # WhatsApp user, contact, two conversations
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
