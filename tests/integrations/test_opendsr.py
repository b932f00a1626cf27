"""OpenDSR walk through our own routes: discovery, create (idempotent on subject_request_id, a
conflict when reused for another request), status, cancel while pending, signed callbacks (one
per status change), OpenDSR's error object, and the legacy aliases. The walk of the specification's
MUSTs with a controller written from it is test_opendsr_conformance.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, RequestStatus
from erasure.deliveries import sending
from erasure.integrations import callbacks, processor
from erasure.integrations.models import CallbackDelivery, IntegrationCursor
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.pipeline.states import move_request
from erasure.workflow import Protection
from tests.support.integrations import LOOPBACK
from tests.support.receivers import receiver
from tests.support.web import KeyMaker

EMAIL = "opendsr.canary@example.com"


def _body(srid: str, callback_url: str) -> dict[str, Any]:
    return {
        "api_version": "2.0",
        "regulation": "gdpr",
        "subject_request_id": srid,
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-20T10:00:00Z",
        "subject_identities": [
            {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
        ],
        "status_callback_urls": [callback_url],
        "extensions": {"example.com": {"note": "ignored"}},
    }


def test_opendsr_walk(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    protection: Protection,
    processor_config: ProcessorConfig,
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    discovery = client.get("/opendsr/v2/discovery")
    assert discovery.status_code == 200
    doc = discovery.get_json()
    assert doc["api_version"] == "2.0" and "erasure" in doc["supported_subject_request_types"]
    certificate = client.get(doc["processor_certificate"].removeprefix("https://erasure.test"))
    assert certificate.status_code == 200
    pem = certificate.get_data(as_text=True)
    assert pem.startswith("-----BEGIN CERTIFICATE-----")

    srid = str(uuid.uuid4())
    with receiver() as rx:
        created = client.post(
            "/opendsr/v2/requests", json=_body(srid, rx.url + "/cb"), headers=headers
        )
        assert created.status_code == 201, created.get_json()
        out = created.get_json()
        assert out["subject_request_id"] == srid and out["request_status"] == "pending"
        assert out["expected_completion_time"]
        again = client.post(
            "/opendsr/v2/requests", json=_body(srid, rx.url + "/cb"), headers=headers
        )
        assert again.status_code == 200
        assert again.get_json()["processor_request_id"] == out["processor_request_id"]
        assert (
            db_session.scalar(
                select(func.count())
                .select_from(ErasureRequest)
                .where(ErasureRequest.reference_id == srid)
            )
            == 1
        )

        status = client.get(f"/opendsr/v2/requests/{srid}", headers=headers)
        assert status.status_code == 200 and status.get_json()["request_status"] == "pending"
        other = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
        assert client.get(f"/opendsr/v2/requests/{srid}", headers=other).status_code == 400

        cancelled = client.delete(f"/opendsr/v2/requests/{srid}", headers=headers)
        assert (
            cancelled.status_code == 202 and cancelled.get_json()["request_status"] == "cancelled"
        )
        assert client.delete(f"/opendsr/v2/requests/{srid}", headers=headers).status_code == 400

        assert callbacks.dispatch(db_session, links=callbacks.Links("https://erasure.test")) == 2
        senders = callbacks.Senders(
            transport=RequestsTransport(guard=AddressGuard.allowing(LOOPBACK)),
            vault=protection.vault,
            processor=processor_config,
        )
        while sending.send_next(db_session, senders):
            pass
    assert len(rx.received) == 2
    statuses = []
    for got in rx.received:
        assert processor.verify(pem, got.body, got.headers["X-Opendsr-Signature"])
        assert not processor.verify(pem, got.body + b" ", got.headers["X-Opendsr-Signature"])
        event = json.loads(got.body)
        assert event["subject_request_id"] == srid
        assert event["status_callback_url"] == rx.url + "/cb"
        statuses.append(event["request_status"])
        assert EMAIL not in got.body.decode()
    assert statuses == ["pending", "cancelled"]


def test_cancel_after_processing_began_is_refused(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    srid = "ctrl-42"
    assert (
        client.post(
            "/opendsr/v2/requests", json=_body(srid, "https://c.example/cb"), headers=headers
        ).status_code
        == 201
    )
    erasure_request = db_session.scalar(
        select(ErasureRequest).where(ErasureRequest.reference_id == srid)
    )
    assert erasure_request is not None
    erasure_request.status = RequestStatus.DELETING
    db_session.commit()
    assert (
        client.get(f"/opendsr/v2/requests/{srid}", headers=headers).get_json()["request_status"]
        == "in_progress"
    )
    refused = client.delete(f"/opendsr/v2/requests/{srid}", headers=headers)
    assert refused.status_code == 400 and refused.mimetype == "application/json"
    assert refused.get_json()["error"]["errors"][0]["reason"] == "invalid_transition"


def test_bad_opendsr_input_is_a_400_error_object_and_writes_nothing(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    before = db_session.scalar(select(func.count()).select_from(ErasureRequest))
    bad_email = _body("x1", "https://c.example/cb")
    bad_email["subject_identities"][0]["identity_value"] = "not-an-email"
    response = client.post("/opendsr/v2/requests", json=bad_email, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 400
    assert error["errors"][0]["location"] == "subject_identities.0.identity_value"
    assert "not-an-email" not in response.get_data(as_text=True)
    bad_url = _body("x2", "http://internal.example/cb")
    response = client.post("/opendsr/v2/requests", json=bad_url, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["location"] == "status_callback_urls"
    assert "internal.example" not in response.get_data(as_text=True)
    wrong_type = {**_body("x3", "https://c.example/cb"), "subject_request_type": "portability"}
    assert client.post("/opendsr/v2/requests", json=wrong_type, headers=headers).status_code == 400
    assert db_session.scalar(select(func.count()).select_from(ErasureRequest)) == before


@pytest.mark.parametrize(
    "submitted_time",
    [
        "9999-12-31T23:59:59Z",  # its deadline is past the last representable instant
        "0001-01-01T00:00:00+14:00",  # before the first instant in UTC
        "3000-01-01T00:00:00Z",  # in the future: it would move the legal deadline
        "0001-01-02T00:00:00Z",  # long before any privacy law
    ],
)
def test_an_impossible_submitted_time_is_400_and_writes_nothing(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker, submitted_time: str
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    body = _body(str(uuid.uuid4()), "https://example.com/cb")
    body["status_callback_urls"] = []
    body["submitted_time"] = submitted_time
    before = db_session.scalar(select(func.count()).select_from(ErasureRequest))
    response = client.post("/opendsr/v2/requests", json=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert [detail["reason"] for detail in error["errors"]] == ["validation_error"]
    assert [detail["location"] for detail in error["errors"]] == ["submitted_time"]
    assert db_session.scalar(select(func.count()).select_from(ErasureRequest)) == before


def _move(session: Session, request_id: uuid.UUID, steps: list[tuple[str, RequestStatus]]) -> None:
    """The pipeline's own transitions, each with its leaf, as the resolve and delete steps make
    them."""
    erasure_request = session.get(ErasureRequest, request_id)
    assert erasure_request is not None
    for kind, status in steps:
        move_request(session, erasure_request, status, at=datetime.now(UTC), kind=kind)
    session.flush()


PIPELINE_STEPS = [
    ("request.resolving", RequestStatus.RESOLVING),
    ("request.resolved", RequestStatus.DELETING),
    ("request.confirming", RequestStatus.CONFIRMING),
    ("request.completed", RequestStatus.COMPLETED),
]


@pytest.mark.parametrize("dispatch_each_step", [True, False])
def test_one_callback_per_opendsr_status_change_in_order(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    dispatch_each_step: bool,
) -> None:
    """Resolving, deleting and confirming are all `in_progress`: the controller hears it once,
    and the statuses arrive in the order they happened whether the dispatcher runs after every
    step or once after all of them."""
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    links = callbacks.Links("https://erasure.test")
    srid = str(uuid.uuid4())
    created = client.post(
        "/opendsr/v2/requests", json=_body(srid, "https://c.example/cb"), headers=headers
    )
    assert created.status_code == 201
    request_id = uuid.UUID(created.get_json()["processor_request_id"])
    callbacks.dispatch(db_session, links=links)
    for step in PIPELINE_STEPS:
        _move(db_session, request_id, [step])
        if dispatch_each_step:
            callbacks.dispatch(db_session, links=links)
    callbacks.dispatch(db_session, links=links)
    bodies = db_session.scalars(
        select(CallbackDelivery.body)
        .where(CallbackDelivery.request_id == request_id)
        .order_by(CallbackDelivery.leaf_id)
    ).all()
    statuses = [json.loads(body)["request_status"] for body in bodies]
    assert statuses == ["pending", "in_progress", "completed"]


def test_a_reused_subject_request_id_is_a_conflict_and_a_replay_is_not(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    srid = str(uuid.uuid4())
    first = _body(srid, "https://c.example/cb")
    created = client.post("/opendsr/v2/requests", json=first, headers=headers)
    assert created.status_code == 201
    # The same request again, members reordered and an extension changed: a replay.
    replay = dict(reversed(list(first.items())))
    replay["extensions"] = {"erasure.test": {"note": "retry"}}
    again = client.post("/opendsr/v2/requests", json=replay, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["processor_request_id"] == created.get_json()["processor_request_id"]
    other_subject = _body(srid, "https://c.example/cb")
    other_subject["subject_identities"][0]["identity_value"] = "someone.else@example.com"
    other_regulation = {**first, "regulation": "ccpa"}
    other_time = {**first, "submitted_time": "2026-11-21T10:00:00Z"}
    other_callbacks = _body(srid, "https://elsewhere.example/cb")
    for different in (other_subject, other_regulation, other_time, other_callbacks):
        response = client.post("/opendsr/v2/requests", json=different, headers=headers)
        assert response.status_code == 400, different
        error = response.get_json()["error"]
        assert error["errors"][0]["reason"] == "subject_request_conflict"
        text = response.get_data(as_text=True)
        assert srid not in text and "someone.else" not in text and EMAIL not in text
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(ErasureRequest)
            .where(ErasureRequest.reference_id == srid)
        )
        == 1
    )
