"""ServiceNow's shared-secret scheme, authentic-but-broken bodies, and source admin input."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, Source
from erasure.integrations.models import WebhookDelivery, WebhookScheme, WebhookSecret
from tests.support.integrations import MakeSource
from tests.support.senders import SENDERS, dumps
from tests.support.web import KeyMaker


def _count(db_session: Session, model: type) -> int:
    return db_session.scalar(select(func.count()).select_from(model)) or 0


def test_servicenow_shared_secret(
    client: FlaskClient, db_session: Session, org: Org, make_source: MakeSource
) -> None:
    source, secret = make_source(Source.SERVICENOW, WebhookScheme.SHARED_SECRET, org=org.name)
    stored = db_session.scalars(
        select(WebhookSecret).where(WebhookSecret.source_id == source.id)
    ).one()
    assert (
        stored.ciphertext is None and stored.secret_hash == hashlib.sha256(secret.encode()).digest()
    )
    body = dumps(SENDERS["servicenow"].payload(email="sn@example.com", ticket="CS0001"))
    url = f"/v1/webhooks/{source.name}"
    headers = {"Content-Type": "application/json", "X-Erasure-Delivery-Id": "sn-1"}
    assert client.post(url, data=body, headers=headers).status_code == 401  # missing
    wrong = headers | {"X-Erasure-Webhook-Secret": secret[:-1]}
    assert client.post(url, data=body, headers=wrong).status_code == 401
    good = headers | {"X-Erasure-Webhook-Secret": secret}
    assert client.post(url, data=body, headers=good).status_code == 202
    for _ in range(10):
        assert client.post(url, data=body, headers=good).status_code == 200
    assert _count(db_session, ErasureRequest) >= 1
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.source_id == source.id)
        )
        == 1
    )


def test_an_authentic_body_that_is_not_json_is_400_and_writes_nothing(
    client: FlaskClient, db_session: Session, org: Org, make_source: MakeSource
) -> None:
    source, secret = make_source(Source.JIRA, org=org.name)
    body = b"not json"
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature": f"sha256={signature}", "X-Atlassian-Webhook-Identifier": "x"}
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 401  # Jira's timestamp lives in the body: no JSON, no proof
    sw_source, sw_secret = make_source(Source.STANDARD_WEBHOOKS, org=org.name)
    sender = SENDERS["standard"]
    at = datetime.now(UTC)
    for bad in (b"not json", b"[1, 2]"):
        headers = sender.sign(bad, secret=sw_secret, at=at, delivery_id=str(uuid.uuid4()))
        response = client.post(f"/v1/webhooks/{sw_source.name}", data=bad, headers=headers)
        assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert _count(db_session, WebhookDelivery) == 0


def test_an_unconfigured_org_is_503_so_the_sender_retries(
    client: FlaskClient, db_session: Session, org: Org, make_source: MakeSource
) -> None:
    source, secret = make_source(Source.STANDARD_WEBHOOKS, org="no-such-org")
    sender = SENDERS["standard"]
    body = dumps(sender.payload(email="x@example.com", ticket="T-1"))
    headers = sender.sign(body, secret=secret, at=datetime.now(UTC), delivery_id="m-1")
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 503
    assert _count(db_session, WebhookDelivery) == 0  # not recorded, so the retry is not a "replay"


def test_source_admin_refuses_bad_input(client: FlaskClient, make_key: KeyMaker) -> None:
    admin = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    cases: list[tuple[dict[str, object], str]] = [
        ({"name": "Bad Name", "system": "jira"}, "name"),
        ({"name": "ok", "system": "api"}, "scheme"),
        ({"name": "ok", "system": "jira", "scheme": "zendesk"}, "scheme"),
        ({"name": "ok", "system": "jira", "mapping": {"nope": 1}}, "mapping"),
        ({"name": "ok", "system": "standard_webhooks", "secret": "whsec_" + "A" * 12}, "secret"),
    ]
    for body, field in cases:
        response = client.post("/v1/webhook-sources", json=body, headers=admin)
        assert response.status_code == 422, (body, response.get_json())
        assert field in json.dumps(response.get_json()["errors"])
    created = client.post(
        "/v1/webhook-sources", json={"name": "dup", "system": "zendesk"}, headers=admin
    )
    assert created.status_code == 201 and created.get_json()["secret"]
    listed = client.get("/v1/webhook-sources", headers=admin).get_json()["items"]
    assert all(item["secret"] is None for item in listed)
    again = client.post(
        "/v1/webhook-sources", json={"name": "dup", "system": "zendesk"}, headers=admin
    )
    assert again.status_code == 409


def _nul_in(document: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of `document` with a NUL put into the string at dotted `path`."""
    copy = json.loads(json.dumps(document))
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = node[part]
    node[last] = f"{node[last]}\u0000x"
    return copy


HOSTILE = [
    ("jira", "issue.key"),
    ("jira", "issue.self"),
    ("zendesk", "ticket.url"),
    ("servicenow", "url"),
    ("standard", "data.reference.id"),
]


@pytest.mark.parametrize(("system", "path"), HOSTILE, ids=[f"{s}:{p}" for s, p in HOSTILE])
def test_a_signed_delivery_with_nul_in_a_string_is_4xx_and_writes_nothing(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_source: MakeSource,
    system: str,
    path: str,
) -> None:
    # Authentic, so a 5xx would be retried by the sender for ever; Postgres text cannot hold NUL.
    sender = SENDERS[system]
    source, secret = make_source(sender.system, org=org.name)
    at = datetime.now(UTC)
    document = _nul_in(
        sender.restamp(sender.payload(email="x@example.com", ticket="T-1"), at), path
    )
    body = dumps(document)
    headers = sender.sign(body, secret=secret, at=at, delivery_id=str(uuid.uuid4()))
    before = (_count(db_session, WebhookDelivery), _count(db_session, ErasureRequest))
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "\u0000" not in response.get_data(as_text=True)
    assert (_count(db_session, WebhookDelivery), _count(db_session, ErasureRequest)) == before


def test_a_signed_delivery_with_a_lone_surrogate_is_4xx(
    client: FlaskClient, db_session: Session, org: Org, make_source: MakeSource
) -> None:
    sender = SENDERS["jira"]
    source, secret = make_source(sender.system, org=org.name)
    at = datetime.now(UTC)
    body = dumps(sender.restamp(sender.payload(email="x@example.com", ticket="T-2"), at))
    body = body.replace(b'"T-2"', b'"T-2\\ud800"')
    headers = sender.sign(body, secret=secret, at=at, delivery_id=str(uuid.uuid4()))
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert _count(db_session, WebhookDelivery) == 0
