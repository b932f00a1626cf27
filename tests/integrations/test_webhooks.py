"""Inbound webhooks per source, with each system's real headers and payload shapes: a valid
delivery creates one request; tampering, wrong secrets, missing headers, stale or future
timestamps, re-serialised JSON and truncated signatures are each refused; replays create nothing."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org
from erasure.integrations.models import WebhookDelivery, WebhookSource
from tests.support.integrations import MakeSource
from tests.support.senders import SENDERS, STALE, Sender, dumps
from tests.support.web import KeyMaker

EMAIL = "dana.subject@example.com"


def _post(client: FlaskClient, source: WebhookSource, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)


def _requests(db_session: Session, source: WebhookSource) -> int:
    return (
        db_session.scalar(
            select(func.count())
            .select_from(ErasureRequest)
            .where(ErasureRequest.source == source.system)
        )
        or 0
    )


def _delivery(
    sender: Sender, secret: str, *, ticket: str = "PRIV-7", at: datetime | None = None, **kw: Any
) -> tuple[bytes, dict[str, str]]:
    at = at or datetime.now(UTC)
    document = sender.restamp(sender.payload(email=EMAIL, ticket=ticket, **kw), at)
    body = dumps(document)
    return body, sender.sign(body, secret=secret, at=at, delivery_id=str(uuid.uuid4()))


@pytest.fixture(params=list(SENDERS), ids=list(SENDERS))
def sender(request: pytest.FixtureRequest) -> Sender:
    return SENDERS[request.param]


@pytest.fixture
def source_and_secret(
    sender: Sender, make_source: MakeSource, org: Org
) -> tuple[WebhookSource, str]:
    return make_source(sender.system, org=org.name)


def test_a_valid_delivery_creates_one_request(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    source, secret = source_and_secret
    body, headers = _delivery(sender, secret)
    response = _post(client, source, body, headers)
    assert response.status_code == 202, response.get_json()
    out = response.get_json()
    assert out["outcome"] == "created"
    erasure_request = db_session.get(ErasureRequest, uuid.UUID(out["request_id"]))
    assert erasure_request is not None
    assert erasure_request.source == sender.system
    assert erasure_request.reference_id
    assert _requests(db_session, source) == 1
    assert EMAIL not in response.get_data(as_text=True)


def _flip_bit(body: bytes) -> bytes:
    position = body.index(b"example.com")
    return body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]


def _truncate(value: str) -> str:
    return value[: len(value) - 4]


TAMPERINGS = ["bit-flip", "wrong-secret", "stale", "future", "reserialized", "truncated"]


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_tampered_deliveries_are_refused(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
    tampering: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, secret = source_and_secret
    body, headers = _delivery(sender, secret)
    if tampering == "bit-flip":
        body = _flip_bit(body)
    elif tampering == "wrong-secret":
        body, headers = _delivery(sender, secret[:-6] + "AAAAAA")
    elif tampering in {"stale", "future"}:
        at = datetime.now(UTC) + (-STALE if tampering == "stale" else STALE)
        body, headers = _delivery(sender, secret, at=at)
    elif tampering == "reserialized":
        body = json.dumps(json.loads(body), separators=(",", ":")).encode()
    elif tampering == "truncated":
        headers[sender.signature_header] = _truncate(headers[sender.signature_header])
    with caplog.at_level(logging.WARNING, logger="erasure.security"):
        response = _post(client, source, body, headers)
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "invalid_signature"
    assert _requests(db_session, source) == 0
    assert db_session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert any(getattr(r, "event", None) == "webhook.rejected" for r in caplog.records)
    assert EMAIL not in response.get_data(as_text=True) + caplog.text


def test_each_missing_header_is_refused(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    source, secret = source_and_secret
    body, headers = _delivery(sender, secret)
    for name in sender.required_headers:
        partial = {k: v for k, v in headers.items() if k != name}
        response = _post(client, source, body, partial)
        assert response.status_code == 401
        assert name in response.get_json()["detail"]
    assert _requests(db_session, source) == 0


def test_a_replay_ten_times_creates_nothing(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, secret = source_and_secret
    body, headers = _delivery(sender, secret)
    first = _post(client, source, body, headers)
    assert first.status_code == 202
    with caplog.at_level(logging.WARNING, logger="erasure.security"):
        for _ in range(10):
            again = _post(client, source, body, headers)
            assert again.status_code == 200
            assert again.get_json()["outcome"] == "duplicate"
    assert _requests(db_session, source) == 1
    assert db_session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    assert sum(getattr(r, "event", None) == "webhook.replay" for r in caplog.records) == 10


def test_a_replay_under_a_fresh_delivery_id_creates_nothing(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    """Jira's and Zendesk's delivery-id headers are not signed: the signed bytes are the key."""
    source, secret = source_and_secret
    at = datetime.now(UTC)
    body, headers = _delivery(sender, secret, at=at)
    assert _post(client, source, body, headers).status_code == 202
    for name in ("X-Atlassian-Webhook-Identifier", "X-Zendesk-Webhook-Invocation-Id"):
        if name in headers:
            headers[name] = str(uuid.uuid4())
    assert _post(client, source, body, headers).status_code == 200
    assert _requests(db_session, source) == 1


def test_a_ticket_that_is_not_an_erasure_is_acknowledged_and_ignored(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    source, secret = source_and_secret
    body, headers = _delivery(sender, secret, erasure=False)
    response = _post(client, source, body, headers)
    assert response.status_code == 202
    out = response.get_json()
    assert out["outcome"] == "ignored" and out["request_id"] is None
    assert "does not match the rule" in out["reason"]
    delivery = db_session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.source_id == source.id)
    )
    assert delivery is not None and delivery.reason == out["reason"]
    assert _requests(db_session, source) == 0


def test_a_second_delivery_for_the_same_ticket_creates_no_second_request(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    source, secret = source_and_secret
    assert _post(client, source, *_delivery(sender, secret)).status_code == 202
    response = _post(
        client, source, *_delivery(sender, secret, at=datetime.now(UTC) - timedelta(seconds=1))
    )
    assert response.status_code == 202
    assert "already has erasure request" in response.get_json()["reason"]
    assert _requests(db_session, source) == 1


def test_two_events_of_one_ticket_within_one_second_are_two_deliveries(
    client: FlaskClient,
    db_session: Session,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    """Signature timestamps may have whole seconds (Zendesk): the second event of the ticket is
    still a new delivery, answered as a second delivery for the ticket, not as a replay."""
    source, secret = source_and_secret
    at = datetime.now(UTC).replace(microsecond=100_000)
    assert _post(client, source, *_delivery(sender, secret, at=at)).status_code == 202
    later = at + timedelta(milliseconds=300)  # the same whole second
    response = _post(client, source, *_delivery(sender, secret, at=later))
    assert response.status_code == 202, response.get_json()
    assert "already has erasure request" in response.get_json()["reason"]
    assert db_session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
    assert _requests(db_session, source) == 1


def test_rotation_keeps_the_old_secret_valid_for_the_overlap(
    client: FlaskClient,
    make_key: KeyMaker,
    sender: Sender,
    source_and_secret: tuple[WebhookSource, str],
) -> None:
    source, old = source_and_secret
    admin = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    rotated = client.post(
        f"/v1/webhook-sources/{source.name}/secrets",
        json={"previous_valid_for_s": 3600},
        headers=admin,
    )
    assert rotated.status_code == 201
    new = rotated.get_json()["secret"]
    assert _post(client, source, *_delivery(sender, new, ticket="PRIV-1")).status_code == 202
    assert _post(client, source, *_delivery(sender, old, ticket="PRIV-2")).status_code == 202
    # Rotate again, retiring the current secrets at once: only the newest verifies.
    newest = client.post(
        f"/v1/webhook-sources/{source.name}/secrets",
        json={"previous_valid_for_s": 0},
        headers=admin,
    ).get_json()["secret"]
    assert _post(client, source, *_delivery(sender, old, ticket="PRIV-3")).status_code == 401
    assert _post(client, source, *_delivery(sender, new, ticket="PRIV-4")).status_code == 401
    assert _post(client, source, *_delivery(sender, newest, ticket="PRIV-5")).status_code == 202


def test_unknown_source_is_404(client: FlaskClient) -> None:
    response = client.post(
        "/v1/webhooks/nope", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
