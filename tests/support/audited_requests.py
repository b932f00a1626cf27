"""Requests taken through the API to completion, and a checkpoint signed over the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.audit import leaves, store
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import ErasureRequest, Org, RequestStatus, Target, TargetKind, TargetStatus


def submit(client: FlaskClient, headers: dict[str, str], phone: str = "+14155552671") -> str:
    response = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": phone}, "regulation": "gdpr"},
        headers=headers,
    )
    assert response.status_code == 202
    return str(response.get_json()["id"])


def complete(session: Session, request_id: str, org: Org) -> None:
    """What the pipeline does at the end, reduced to its facts: a deleted target and the leaves."""
    erasure_request = session.get(ErasureRequest, request_id)
    assert erasure_request is not None
    target = Target(
        request_id=erasure_request.id,
        org_id=org.id,
        kind=TargetKind.MESSAGING_END_USER,
        salesforce_id="0PA000000000001AAA",
        status=TargetStatus.DELETED,
        due_at=erasure_request.due_at,
        log_id="0Xa000000000001",
        log_status="COMPLETED",
    )
    session.add(target)
    session.flush()
    leaves.append(
        session,
        kind="target.deleted",
        request_id=erasure_request.id,
        data={"target": str(target.id), "log_id": "0Xa000000000001"},
    )
    leaves.append(
        session,
        kind="request.completed",
        request_id=erasure_request.id,
        data={"targets_deleted": 1},
    )
    erasure_request.status = RequestStatus.COMPLETED
    erasure_request.completed_at = datetime.now(UTC)
    session.flush()


def checkpoint_now(session: Session, key: SigningKey) -> None:
    while store.sequence(session):
        pass
    store.sign_checkpoint(session, key, origin=ORIGIN)


ORIGIN = "erasure.test/audit"
