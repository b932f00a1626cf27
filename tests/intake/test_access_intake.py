"""Access requests come in through the same intake as erasure requests (issue 14): the same
pipelined write transaction (no ORM unit of work), the same Idempotency-Key promises, sealed
identifiers, and the audit leaf and the outbox row written with the request."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.access.models import AccessIdentifier, AccessRequest
from erasure.audit.models import AuditLeaf
from erasure.core.models import Org
from erasure.outbox.models import OutboxMessage
from tests.support.web import Committed, LiveServer

PHONE = "+14155552671"


def _body(org: str) -> dict[str, object]:
    return {
        "subject": {"phone": PHONE, "email": "Ana@Example.com"},
        "regulation": "gdpr",
        "org": org,
        "reference": {"system": "jira", "id": "PRIV-77"},
        "notes": "asked by letter",
    }


def _accesses(session: Session, org: Org) -> int:
    query = select(func.count()).select_from(AccessRequest).where(AccessRequest.org_id == org.id)
    return session.scalar(query) or 0


def test_an_access_submission_sends_no_statement_through_the_orm(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    # The first request reads the API key (cached afterwards).
    client.post("/v1/access-requests", json=_body(org.name), headers=officer_headers)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "SAVEPOINT" not in statement:  # the test session's commits release savepoints
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        headers = officer_headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        response = client.post("/v1/access-requests", json=_body(org.name), headers=headers)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert response.status_code == 202, response.get_json()
    assert statements == []
    answer = response.get_json()
    assert answer["status"] == "received" and answer["reference"]["id"] == "PRIV-77"
    assert response.headers["Location"].endswith(f"/v1/access-requests/{answer['id']}")


def test_an_access_submission_writes_sealed_identifiers_its_leaf_and_its_outbox_row(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    response = client.post("/v1/access-requests", json=_body(org.name), headers=officer_headers)
    assert response.status_code == 202
    request_id = uuid.UUID(response.get_json()["id"])
    stored = db_session.get(AccessRequest, request_id)
    assert stored is not None and stored.org_id == org.id
    assert stored.notes_ciphertext is not None and b"letter" not in stored.notes_ciphertext
    identifiers = db_session.scalars(
        select(AccessIdentifier).where(AccessIdentifier.request_id == request_id)
    ).all()
    assert sorted(i.kind.value for i in identifiers) == ["email", "phone"]
    for identifier in identifiers:
        assert identifier.ciphertext is not None
        assert PHONE.encode() not in identifier.ciphertext
        assert b"example.com" not in identifier.ciphertext
    leaves = db_session.scalars(
        select(AuditLeaf.leaf).where(AuditLeaf.request_id == request_id)
    ).all()
    assert len(leaves) == 1
    leaf = json.loads(leaves[0])
    assert leaf["kind"] == "access.received" and leaf["data"]["org"] == org.name
    assert [s["kind"] for s in leaf["data"]["subject"]] == ["email", "phone"]
    assert PHONE not in leaves[0].decode() and "example.com" not in leaves[0].decode()
    outbox = db_session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == task_names.RETRIEVE_ACCESS)
    )
    assert outbox and outbox >= 1


def test_an_access_replay_answers_the_first_response_and_another_body_is_422(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    headers = officer_headers | {"Idempotency-Key": '"access-retry-1"'}
    first = client.post("/v1/access-requests", json=_body(org.name), headers=headers)
    again = client.post("/v1/access-requests", json=_body(org.name), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        "/v1/access-requests", json=_body(org.name) | {"regulation": "ccpa"}, headers=headers
    )
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_mismatch"
    # The same key on the erasure endpoint is another request body: refused, not replayed.
    erasure = client.post("/v1/erasure-requests", json=_body(org.name), headers=headers)
    assert erasure.status_code == 422
    assert _accesses(db_session, org) == 1


def test_an_unknown_org_is_answered_and_writes_nothing(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    headers = officer_headers | {"Idempotency-Key": '"access-unknown-org"'}
    body = _body("no-such-org")
    response = client.post("/v1/access-requests", json=body, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert _accesses(db_session, org) == 0


def test_50_concurrent_identical_access_posts_make_one_request_and_one_leaf(
    live_server: LiveServer, committed: Committed
) -> None:
    key = f"access-burst-{uuid.uuid4()}"
    body = json.dumps(_body(committed.org_name))
    headers = committed.headers | {"Content-Type": "application/json", "Idempotency-Key": key}
    url = f"{live_server.url}/v1/access-requests"
    start = threading.Barrier(50)

    def post(_: int) -> requests.Response:
        start.wait()  # release all 50 at once
        return requests.post(url, data=body, headers=headers, timeout=30)

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(post, range(50)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {202, 409}, statuses
        accepted = {r.json()["id"] for r in responses if r.status_code == 202}
        assert len(accepted) == 1  # every 202 is the same request, replayed
        for conflict in (r for r in responses if r.status_code == 409):
            assert conflict.json()["code"] == "idempotency_key_in_use"
        retry = requests.post(url, data=body, headers=headers, timeout=30)
        assert retry.status_code == 202 and retry.json()["id"] in accepted
        with live_server.sessionmaker() as session:
            stored = session.scalars(
                select(AccessRequest.id).join(Org).where(Org.name == committed.org_name)
            ).all()
            assert [str(i) for i in stored] == list(accepted)
            leaves = session.scalar(
                select(func.count()).select_from(AuditLeaf).where(AuditLeaf.request_id == stored[0])
            )
            assert leaves == 1
    finally:
        # The fixture removes the org; its access requests go first (foreign key).
        with live_server.sessionmaker() as session:
            org_id = select(Org.id).where(Org.name == committed.org_name).scalar_subquery()
            session.execute(delete(AccessRequest).where(AccessRequest.org_id == org_id))
            session.commit()
