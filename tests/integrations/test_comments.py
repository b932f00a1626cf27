"""Comment-back on completion or failure, against local fake Jira, Zendesk and ServiceNow
servers (real HTTP on 127.0.0.1) that check method, path, auth and body as each API expects."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.audit import leaves
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, RequestStatus, Source
from erasure.deliveries import sending
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackDelivery, CallbackStatus, IntegrationCursor
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.workflow import Protection
from tests.support.integrations import LOOPBACK, MakeSource
from tests.support.receivers import Received, receiver
from tests.support.senders import SENDERS, dumps

EMAIL = "comment.canary@example.com"
USER, TOKEN = "bot@acme.example", "api-token-123"


def _expect(system: Source, ticket: str, sys_id: str) -> tuple[str, str, str]:
    if system is Source.JIRA:
        return "POST", f"/rest/api/3/issue/{ticket}/comment", f"{USER}:{TOKEN}"
    if system is Source.ZENDESK:
        return "PUT", f"/api/v2/tickets/{ticket}.json", f"{USER}/token:{TOKEN}"
    return "PATCH", f"/api/now/table/sn_customerservice_case/{sys_id}", f"{USER}:{TOKEN}"


def _text_of(system: Source, body: dict[str, object]) -> str:
    if system is Source.JIRA:
        doc = body["body"]
        assert isinstance(doc, dict) and doc["type"] == "doc" and doc["version"] == 1
        return "\n".join(p["content"][0]["text"] for p in doc["content"])
    if system is Source.ZENDESK:
        comment = body["ticket"]["comment"]  # type: ignore[index]
        assert comment["public"] is False
        return str(comment["body"])
    return str(body["work_notes"])


@pytest.mark.parametrize("name", ["jira", "zendesk", "servicenow"])
@pytest.mark.parametrize("outcome", [RequestStatus.COMPLETED, RequestStatus.FAILED])
def test_comment_back_on_completion_and_failure(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_source: MakeSource,
    protection: Protection,
    processor_config: ProcessorConfig,
    name: str,
    outcome: RequestStatus,
) -> None:
    sender = SENDERS[name]
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    ticket = "4711" if name != "jira" else "PRIV-4711"
    document = sender.restamp(sender.payload(email=EMAIL, ticket=ticket), datetime.now(UTC))
    sys_id = str(document.get("sys_id", ""))
    method, path, credentials = _expect(sender.system, ticket, sys_id)

    def check(got: Received) -> int | None:
        expected_auth = "Basic " + base64.b64encode(credentials.encode()).decode()
        if got.headers.get("Authorization") != expected_auth:
            return 401
        if got.method != method or got.path != path:
            return 404
        if got.headers.get("Content-Type") != "application/json":
            return 415
        return 200

    with receiver() as fake:
        fake.check = check
        source, secret = make_source(
            sender.system,
            org=org.name,
            comment_base_url=fake.url,
            comment_user=USER,
            comment_token=TOKEN,
        )
        body = dumps(document)
        headers = sender.sign(
            body, secret=secret, at=datetime.now(UTC), delivery_id=str(uuid.uuid4())
        )
        created = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
        assert created.status_code == 202, created.get_json()
        request_id = uuid.UUID(created.get_json()["request_id"])
        erasure_request = db_session.get(ErasureRequest, request_id)
        assert erasure_request is not None
        erasure_request.status = outcome
        erasure_request.outcome = (
            "all targets deleted" if outcome is RequestStatus.COMPLETED else "org paused"
        )
        leaves.append(db_session, kind=f"request.{outcome.value}", request_id=request_id, data={})
        db_session.flush()
        callbacks.dispatch(db_session, links=callbacks.Links("https://erasure.test"))
        senders = callbacks.Senders(
            transport=RequestsTransport(guard=AddressGuard.allowing(LOOPBACK)),
            vault=protection.vault,
            processor=processor_config,
        )
        while sending.send_next(db_session, senders):
            pass
    assert len(fake.received) == 1
    got = fake.received[0]
    text = _text_of(sender.system, json.loads(got.body))
    assert str(request_id) in text and outcome.value in text
    assert ("/certificate" in text) is (outcome is RequestStatus.COMPLETED)
    assert EMAIL not in got.body.decode()
    delivery = db_session.scalar(
        select(CallbackDelivery).where(CallbackDelivery.request_id == request_id)
    )
    assert delivery is not None and delivery.status is CallbackStatus.DELIVERED


def test_wrong_comment_credentials_are_retried_not_lost(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_source: MakeSource,
    protection: Protection,
    processor_config: ProcessorConfig,
) -> None:
    sender = SENDERS["jira"]
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    with receiver(default=401) as fake:
        source, secret = make_source(
            Source.JIRA,
            org=org.name,
            comment_base_url=fake.url,
            comment_user=USER,
            comment_token="wrong",
        )
        body = dumps(sender.payload(email=EMAIL, ticket="PRIV-9"))
        headers = sender.sign(body, secret=secret, at=datetime.now(UTC), delivery_id="d-1")
        request_id = uuid.UUID(
            client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers).get_json()[
                "request_id"
            ]
        )
        leaves.append(db_session, kind="request.failed", request_id=request_id, data={})
        callbacks.dispatch(db_session, links=callbacks.Links("https://erasure.test"))
        senders = callbacks.Senders(
            transport=RequestsTransport(guard=AddressGuard.allowing(LOOPBACK)),
            vault=protection.vault,
            processor=processor_config,
        )
        assert sending.send_next(db_session, senders)
    delivery = db_session.scalar(
        select(CallbackDelivery).where(CallbackDelivery.request_id == request_id)
    )
    assert delivery is not None
    assert delivery.status is CallbackStatus.PENDING and delivery.last_error == "HTTP 401"
    assert TOKEN not in (delivery.last_error or "") and "wrong" not in (delivery.last_error or "")
