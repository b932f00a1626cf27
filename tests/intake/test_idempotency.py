"""Idempotency-Key semantics (draft-ietf-httpapi-idempotency-key-header)."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org
from tests.support.web import Committed, KeyMaker, LiveServer

BODY = {
    "subject": {"phone": "+14155552671"},
    "regulation": "gdpr",
    "reference": {"system": "jira", "id": "PRIV-9"},
}


def _requests(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ErasureRequest)) or 0


def test_same_key_and_body_replays_the_first_response(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    headers = officer_headers | {"Idempotency-Key": '"retry-1"'}  # the draft's quoted form
    first = client.post("/v1/erasure-requests", json=BODY, headers=headers)
    again = client.post(
        "/v1/erasure-requests", json=BODY, headers=officer_headers | {"Idempotency-Key": "retry-1"}
    )
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _requests(db_session) == 1


def test_same_key_other_body_is_422(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    headers = officer_headers | {"Idempotency-Key": "k"}
    assert client.post("/v1/erasure-requests", json=BODY, headers=headers).status_code == 202
    other = client.post("/v1/erasure-requests", json=BODY | {"regulation": "ccpa"}, headers=headers)
    assert other.status_code == 422
    assert other.get_json()["code"] == "idempotency_key_mismatch"
    assert _requests(db_session) == 1


def test_keys_are_scoped_per_api_key(
    client: FlaskClient, org: Org, make_key: KeyMaker, db_session: Session
) -> None:
    for _ in range(2):
        headers = {"Authorization": f"Bearer {make_key(Role.OFFICER)}", "Idempotency-Key": "shared"}
        assert client.post("/v1/erasure-requests", json=BODY, headers=headers).status_code == 202
    assert _requests(db_session) == 2


def test_without_a_key_each_post_is_a_new_request(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    ids = {
        client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()["id"]
        for _ in range(2)
    }
    assert len(ids) == 2  # the second is linked to the first as a duplicate subject, not dropped


def test_50_concurrent_identical_posts_make_one_request_and_one_leaf(
    live_server: LiveServer, committed: Committed
) -> None:
    key = f"burst-{uuid.uuid4()}"
    body = json.dumps(BODY | {"org": committed.org_name})
    headers = committed.headers | {"Content-Type": "application/json", "Idempotency-Key": key}
    start = threading.Barrier(50)

    def post(_: int) -> requests.Response:
        start.wait()  # release all 50 at once
        return requests.post(
            f"{live_server.url}/v1/erasure-requests", data=body, headers=headers, timeout=30
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 409}, statuses
    accepted = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(accepted) == 1  # every 202 is the same request, replayed
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] == "idempotency_key_in_use"
        assert conflict.headers["Retry-After"] == "1"
    # A retry after the burst replays the one request.
    retry = requests.post(
        f"{live_server.url}/v1/erasure-requests", data=body, headers=headers, timeout=30
    )
    assert retry.status_code == 202 and retry.json()["id"] in accepted
    with live_server.sessionmaker() as session:
        org_requests = session.scalars(
            select(ErasureRequest.id).join(Org).where(Org.name == committed.org_name)
        ).all()
        assert [str(i) for i in org_requests] == list(accepted)
        leaves = session.scalar(
            select(func.count())
            .select_from(AuditLeaf)
            .where(AuditLeaf.request_id == org_requests[0])
        )
        assert leaves == 1
