"""OpenDSR `access` subject requests through our own routes: discovery lists the type, create opens
an access request (idempotent on subject_request_id, a conflict when the id was used for an
erasure, or for another access request), status maps the access request's progress, and what is not
offered for access (status callbacks, cancel) is a 400 error object that writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from erasure.access.models import AccessRequest, AccessStatus
from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, Source
from tests.support.web import KeyMaker

EMAIL = "opendsr.access.canary@example.com"


def _body(srid: str, *, kind: str = "access", email: str = EMAIL) -> dict[str, Any]:
    return {
        "api_version": "2.0",
        "regulation": "gdpr",
        "subject_request_id": srid,
        "subject_request_type": kind,
        "submitted_time": "2026-11-20T10:00:00Z",
        "subject_identities": [
            {"identity_type": "email", "identity_value": email, "identity_format": "raw"}
        ],
        "status_callback_urls": [],
    }


def _count(session: Session, model: type[Any], srid: str) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.reference_id == srid))


def test_an_opendsr_access_request_opens_an_access_request(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    discovery = client.get("/opendsr/v2/discovery").get_json()
    assert {"erasure", "access"} <= set(discovery["supported_subject_request_types"])

    srid = str(uuid.uuid4())
    created = client.post("/opendsr/v2/requests", json=_body(srid), headers=headers)
    assert created.status_code == 201, created.get_json()
    out = created.get_json()
    assert out["subject_request_type"] == "access" and out["request_status"] == "pending"
    access = db_session.get(AccessRequest, uuid.UUID(out["processor_request_id"]))
    assert access is not None and access.source is Source.OPENDSR
    assert access.reference_system == "opendsr" and access.reference_id == srid
    assert out["expected_completion_time"]
    assert _count(db_session, ErasureRequest, srid) == 0

    again = client.post("/opendsr/v2/requests", json=_body(srid), headers=headers)
    assert again.status_code == 200
    assert again.get_json()["processor_request_id"] == out["processor_request_id"]
    assert _count(db_session, AccessRequest, srid) == 1
    other_subject = client.post(
        "/opendsr/v2/requests", json=_body(srid, email="someone.else@example.com"), headers=headers
    )
    assert other_subject.status_code == 400
    assert "someone.else" not in other_subject.get_data(as_text=True)
    as_erasure = client.post(
        "/opendsr/v2/requests", json=_body(srid, kind="erasure"), headers=headers
    )
    assert as_erasure.status_code == 400
    assert as_erasure.get_json()["error"]["errors"][0]["reason"] == "subject_request_conflict"
    assert _count(db_session, ErasureRequest, srid) == 0

    status = client.get(f"/opendsr/v2/requests/{srid}", headers=headers)
    assert status.status_code == 200
    assert status.get_json()["subject_request_type"] == "access"
    assert status.get_json()["request_status"] == "pending"
    assert "results_url" not in status.get_json() or status.get_json()["results_url"] is None
    other = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    assert client.get(f"/opendsr/v2/requests/{srid}", headers=other).status_code == 400

    # Cancelling is offered for erasures only: the access request goes on.
    assert client.delete(f"/opendsr/v2/requests/{srid}", headers=headers).status_code == 400
    db_session.refresh(access)
    assert access.status is AccessStatus.RECEIVED

    for status_now, expected in [
        (AccessStatus.RETRIEVING, "in_progress"),
        (AccessStatus.READY, "completed"),
        (AccessStatus.DESTROYED, "completed"),
        (AccessStatus.FAILED, "cancelled"),
    ]:
        db_session.execute(
            update(AccessRequest).where(AccessRequest.id == access.id).values(status=status_now)
        )
        db_session.commit()
        document = client.get(f"/opendsr/v2/requests/{srid}", headers=headers).get_json()
        assert document["request_status"] == expected, status_now
        if expected == "completed":
            assert document["results_url"].endswith(f"/v1/access-requests/{access.id}/certificate")


def test_an_erasure_id_cannot_be_reused_for_access(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    srid = str(uuid.uuid4())
    erasure = client.post("/opendsr/v2/requests", json=_body(srid, kind="erasure"), headers=headers)
    assert erasure.status_code == 201
    access = client.post("/opendsr/v2/requests", json=_body(srid), headers=headers)
    assert access.status_code == 400
    assert access.get_json()["error"]["errors"][0]["reason"] == "subject_request_conflict"
    assert _count(db_session, AccessRequest, srid) == 0
    status = client.get(f"/opendsr/v2/requests/{srid}", headers=headers).get_json()
    assert status["subject_request_type"] == "erasure"


def test_status_callbacks_are_not_offered_for_access_and_nothing_is_written(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    srid = str(uuid.uuid4())
    body = {**_body(srid), "status_callback_urls": ["https://controller.example/cb"]}
    response = client.post("/opendsr/v2/requests", json=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["location"] == "status_callback_urls"
    assert _count(db_session, AccessRequest, srid) == 0
