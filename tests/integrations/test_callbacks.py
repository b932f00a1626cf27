"""Callbacks out: the dispatcher reads request events from the audit log, deliveries are signed
per Standard Webhooks (checked with the reference package), retried with backoff and jitter,
dead-lettered after the window, and can be redelivered. No subject identifier in any payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import Org
from erasure.deliveries import sending
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackDelivery, CallbackStatus, IntegrationCursor
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.workflow import Protection
from tests.support.callbacks import EMAIL, LINKS, PHONE, drain, submit_request, subscribe
from tests.support.integrations import LOOPBACK
from tests.support.receivers import receiver
from tests.support.web import KeyMaker


@pytest.fixture
def senders(protection: Protection, processor_config: ProcessorConfig) -> callbacks.Senders:
    return callbacks.Senders(
        transport=RequestsTransport(timeout_s=(2.0, 5.0), guard=AddressGuard.allowing(LOOPBACK)),
        vault=protection.vault,
        processor=processor_config,
    )


@pytest.mark.usefixtures("cursor_at_end")
def test_every_state_change_is_delivered_signed_and_without_identifiers(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    senders: callbacks.Senders,
) -> None:
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    with receiver() as rx:
        subscription = subscribe(client, integration, rx.url + "/hooks")
        request_id = submit_request(client, integration)
        assert callbacks.dispatch(db_session, links=LINKS) == 1
        assert callbacks.dispatch(db_session, links=LINKS) == 0  # a leaf is dispatched once
        client.post(
            f"/v1/erasure-requests/{request_id}/cancel",
            json={"reason": "asked"},
            headers=integration,
        )
        assert callbacks.dispatch(db_session, links=LINKS) == 1
        assert drain(db_session, senders) == 2
    assert [r.path for r in rx.received] == ["/hooks", "/hooks"]
    webhook = standardwebhooks.Webhook(subscription["secret"])
    events = [webhook.verify(r.body, r.headers) for r in rx.received]
    assert [e["type"] for e in events] == ["erasure_request.received", "erasure_request.cancelled"]
    assert {e["data"]["id"] for e in events} == {request_id}
    assert events[1]["data"]["status"] == "cancelled"
    assert events[0]["data"]["reference"] == {"system": "crm", "id": "T-1", "url": None}
    assert set(events[0]["data"]) >= {"due_at", "predicted_completion_at", "certificate_url", "url"}
    # Canary: no identifier, in any form, in any byte sent.
    for r in rx.received:
        wire = r.body.decode() + str(r.headers)
        assert PHONE not in wire and PHONE[1:] not in wire and EMAIL not in wire


@pytest.mark.usefixtures("cursor_at_end")
def test_only_the_owner_is_told(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    mine = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    theirs = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    subscribe(client, theirs, "https://theirs.example/hooks")
    submit_request(client, mine)
    assert callbacks.dispatch(db_session, links=LINKS) == 0


def test_a_gap_holds_the_cursor_until_it_is_old(
    db_session: Session, org: Org, protection: Protection
) -> None:
    from erasure.audit import leaves

    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    db_session.execute(
        select(func.nextval("audit_leaves_id_seq"))
    )  # an id a transaction never committed
    leaf = leaves.append(db_session, kind="note.test", request_id=None, data={})
    db_session.flush()
    callbacks.dispatch(db_session, links=LINKS)
    cursor = db_session.get(IntegrationCursor, callbacks.CURSOR)
    assert cursor is not None and cursor.leaf_id == last  # waits: the gap may still commit
    callbacks.dispatch(db_session, links=LINKS, now=datetime.now(UTC) + callbacks.GAP_HOLD * 2)
    db_session.refresh(cursor)
    assert cursor.leaf_id == leaf.id


@pytest.mark.usefixtures("cursor_at_end")
def test_a_receiver_down_for_an_hour_gets_it_later_with_the_same_webhook_id(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    senders: callbacks.Senders,
) -> None:
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    with receiver(default=503) as rx:
        subscribe(client, integration, rx.url)
        submit_request(client, integration)
        callbacks.dispatch(db_session, links=LINKS)
        delivery = db_session.scalar(
            select(CallbackDelivery).order_by(CallbackDelivery.created_at.desc())
        )
        assert delivery is not None
        start = now = datetime.now(UTC)
        delays: list[float] = []
        while now - start < timedelta(hours=1):  # an hour, compressed: the clock is ours
            assert sending.send_next(db_session, senders, now=now)
            delays.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at
        assert delivery.status is CallbackStatus.PENDING and delivery.last_error == "HTTP 503"
        # Exponential with jitter (within 20% of 10 s x 2^n).
        for n, delay in enumerate(delays[:8]):
            assert 0.8 * 10 * 2**n <= delay <= 1.2 * 10 * 2**n
        rx.default = 200
        assert sending.send_next(db_session, senders, now=now)
    assert delivery.status is CallbackStatus.DELIVERED
    ids = {r.headers["Webhook-Id"] for r in rx.received}
    assert ids == {f"msg_{delivery.id.hex}"} and len(rx.received) == delivery.attempts
    assert len({r.body for r in rx.received}) == 1


@pytest.mark.usefixtures("cursor_at_end")
def test_dead_letter_after_the_window_then_redelivery(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    senders: callbacks.Senders,
) -> None:
    assert callbacks.RetryPolicy().minimum_window() >= timedelta(hours=24)
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    officer = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
    with receiver(default=500) as rx:
        subscribe(client, integration, rx.url)
        submit_request(client, integration)
        callbacks.dispatch(db_session, links=LINKS)
        delivery = db_session.scalar(
            select(CallbackDelivery).order_by(CallbackDelivery.created_at.desc())
        )
        assert delivery is not None
        start = now = datetime.now(UTC)
        while delivery.status is CallbackStatus.PENDING:
            assert sending.send_next(db_session, senders, now=now)
            now = max(now, delivery.next_attempt_at)
        assert delivery.status is CallbackStatus.DEAD
        assert now - start >= timedelta(hours=24)
        assert not sending.send_next(db_session, senders, now=now + timedelta(days=30))
        dead = client.get("/v1/callback-deliveries?status=dead", headers=officer).get_json()[
            "items"
        ]
        assert [d["id"] for d in dead] == [str(delivery.id)]
        assert dead[0]["last_error"] == "HTTP 500"
        rx.default = 204
        again = client.post(f"/v1/callback-deliveries/{delivery.id}/redeliver", headers=officer)
        assert again.status_code == 200 and again.get_json()["status"] == "pending"
        assert drain(db_session, senders) == 1
    assert delivery.status is CallbackStatus.DELIVERED
    assert len({r.headers["Webhook-Id"] for r in rx.received}) == 1
    redone = client.post(f"/v1/callback-deliveries/{delivery.id}/redeliver", headers=officer)
    assert redone.status_code == 409
    missing = client.post(f"/v1/callback-deliveries/{uuid.uuid4()}/redeliver", headers=officer)
    assert missing.status_code == 404


def test_callback_urls_must_be_https_or_loopback(client: FlaskClient, make_key: KeyMaker) -> None:
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    for url in ["http://example.com/x", "ftp://x", "https://user:pw@example.com/", "not a url"]:
        response = client.post("/v1/callback-subscriptions", json={"url": url}, headers=integration)
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["field"] == "url"
