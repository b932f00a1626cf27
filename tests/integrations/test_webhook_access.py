"""Access tickets through each system's real webhook shape: the access label, tag, request type
or event type opens one access request (not an erasure), a second delivery for the ticket opens
no second one, and the same ticket may still ask for erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.access.models import AccessRequest, AccessStatus
from erasure.core.models import ErasureRequest, Org
from erasure.integrations.models import DeliveryOutcome, WebhookDelivery, WebhookSource
from tests.support.integrations import MakeSource
from tests.support.senders import SENDERS, Sender, dumps

EMAIL = "access.ticket.canary@example.com"


def _send(
    client: FlaskClient,
    source: WebhookSource,
    sender: Sender,
    secret: str,
    *,
    access: bool,
    at: datetime | None = None,
) -> Any:
    at = at or datetime.now(UTC)
    document = sender.restamp(sender.payload(email=EMAIL, ticket="PRIV-17", access=access), at)
    body = dumps(document)
    headers = sender.sign(body, secret=secret, at=at, delivery_id=str(uuid.uuid4()))
    return client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)


def _count(session: Session, model: type[Any], source: WebhookSource) -> int:
    return session.scalar(
        select(func.count()).select_from(model).where(model.source == source.system)
    )


@pytest.mark.parametrize("system", list(SENDERS))
def test_an_access_ticket_opens_one_access_request(
    client: FlaskClient, db_session: Session, make_source: MakeSource, org: Org, system: str
) -> None:
    sender = SENDERS[system]
    source, secret = make_source(sender.system, org=org.name)
    response = _send(client, source, sender, secret, access=True)
    assert response.status_code == 202, response.get_json()
    out = response.get_json()
    assert out["outcome"] == "created" and out["request_id"] is None
    access = db_session.get(AccessRequest, uuid.UUID(out["access_request_id"]))
    assert access is not None and access.status is AccessStatus.RECEIVED
    assert access.source is sender.system and access.reference_system == sender.system.value
    assert access.reference_id and access.org_id == org.id
    assert _count(db_session, ErasureRequest, source) == 0
    assert EMAIL not in response.get_data(as_text=True)
    delivery = db_session.get(WebhookDelivery, out["delivery"])
    assert delivery is not None and delivery.outcome is DeliveryOutcome.CREATED
    assert delivery.ticket_id == access.reference_id

    again = _send(
        client, source, sender, secret, access=True, at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert again.status_code == 202
    assert again.get_json()["outcome"] == "ignored"
    assert again.get_json()["reason"] == f"the ticket already has access request {access.id}"
    assert _count(db_session, AccessRequest, source) == 1

    # The subject may then ask for erasure on the same ticket: that is a request of its own.
    erasure = _send(
        client, source, sender, secret, access=False, at=datetime.now(UTC) - timedelta(seconds=2)
    )
    assert erasure.status_code == 202 and erasure.get_json()["outcome"] == "created"
    assert erasure.get_json()["request_id"] and erasure.get_json()["access_request_id"] is None
    assert _count(db_session, ErasureRequest, source) == 1
    assert _count(db_session, AccessRequest, source) == 1


def test_an_access_rule_can_be_turned_off_by_the_mapping(
    client: FlaskClient, db_session: Session, make_source: MakeSource, org: Org
) -> None:
    sender = SENDERS["jira"]
    source, secret = make_source(sender.system, org=org.name, mapping={"access_match": []})
    response = _send(client, source, sender, secret, access=True)
    assert response.status_code == 202
    assert response.get_json()["outcome"] == "ignored"
    assert "does not match the rule on `issue.fields.labels`" in response.get_json()["reason"]
    assert _count(db_session, AccessRequest, source) == 0
