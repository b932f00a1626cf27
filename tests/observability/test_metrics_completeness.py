"""Metrics the operators asked for beyond the request states: intake 429s, Salesforce token
fetches and 429s per credential (the client's own counters), task redeliveries, callback
deliveries by outcome, delivery circuits by state. No label carries personal data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import Org
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    DeliveryCircuit,
)
from erasure.observability import metrics
from erasure.orgs import add_credential
from erasure.pipeline.models import TaskDelivery
from erasure.salesforce import CredentialSettings, InMemoryUsageStore, OrgSettings
from erasure.workflow import Protection

PHONE = "+14155557766"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_salesforce_callbacks_and_task_counters(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    officer_headers: dict[str, str],
    protection: Protection,
) -> None:
    created = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": PHONE}, "regulation": "gdpr", "org": org.name},
        headers=officer_headers,
    )
    assert created.status_code == 202
    request_id = uuid.UUID(created.get_json()["id"])
    credential = add_credential(
        db_session, protection.vault, org, name="user-1", client_id="cid-1", client_secret="s3cret"
    )
    db_session.flush()
    usage = InMemoryUsageStore()
    key = CredentialSettings("cid-1", "s3cret", "user-1").key(OrgSettings(org.my_domain_url))
    for route, outcome in [("token", "200"), ("token", "200"), ("token", "timeout")]:
        usage.record_call(key, route, outcome)
    for outcome in ("202", "429", "429"):
        usage.record_call(key, "delete_participants", outcome)
    task = f"erasure.test-{uuid.uuid4().hex[:6]}"
    db_session.add_all(
        [
            TaskDelivery(task_id=uuid.uuid4().hex, task_name=task, deliveries=3),
            TaskDelivery(task_id=uuid.uuid4().hex, task_name=task, deliveries=1),
        ]
    )
    db_session.add_all(
        [
            CallbackDelivery(
                channel=CallbackChannel.STANDARD_WEBHOOKS,
                request_id=request_id,
                leaf_id=leaf,
                event="request.completed",
                body="{}",
                status=status,
                attempts=attempts,
            )
            for leaf, status, attempts in [
                (10**12, CallbackStatus.DELIVERED, 1),
                (10**12 + 1, CallbackStatus.DEAD, 5),
            ]
        ]
    )
    db_session.flush()

    text = metrics.render(db_session, usage).decode()
    samples = _samples(text)
    labels = (("credential", credential.name), ("org", org.name))
    assert samples[("erasure_salesforce_token_fetches_total", (*labels, ("outcome", "200")))] == 2
    assert (
        samples[("erasure_salesforce_token_fetches_total", (*labels, ("outcome", "timeout")))] == 1
    )
    assert (
        samples[
            ("erasure_salesforce_rate_limited_total", (*labels, ("route", "delete_participants")))
        ]
        == 2
    )
    assert samples[("erasure_task_redeliveries_total", (("task", task),))] == 2
    delivered = (
        "erasure_callback_deliveries",
        (("channel", "standard_webhooks"), ("status", "delivered")),
    )
    dead = ("erasure_callback_deliveries", (("channel", "standard_webhooks"), ("status", "dead")))
    assert samples[delivered] >= 1 and samples[dead] >= 1
    assert samples[("erasure_callback_retries_total", (("channel", "standard_webhooks"),))] >= 4
    assert "4155557766" not in text and "s3cret" not in text and "cid-1" not in text


def test_intake_429s_are_counted_by_reason(settings: Settings, db_session: Session) -> None:
    app = create_app(
        settings.model_copy(update={"auth_failure_limit": 1}), session_factory=lambda: db_session
    )
    client = app.test_client()
    before = REGISTRY.get_sample_value("erasure_http_throttled_total", {"reason": "auth_failures"})
    bad = {"Authorization": "Bearer ek_333333333333_nope"}
    assert client.get("/v1/erasure-requests", headers=bad).status_code == 401
    assert client.get("/v1/erasure-requests", headers=bad).status_code == 429
    after = REGISTRY.get_sample_value("erasure_http_throttled_total", {"reason": "auth_failures"})
    assert (after or 0) - (before or 0) == 1
    assert 'erasure_http_throttled_total{reason="auth_failures"}' in client.get(
        "/metrics"
    ).get_data(as_text=True)


def test_without_redis_the_metrics_page_still_answers(
    settings: Settings, db_session: Session
) -> None:
    app = create_app(
        settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}),
        session_factory=lambda: db_session,
    )
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert "erasure_requests" in response.get_data(as_text=True)


def test_delivery_circuits_by_state_and_deliveries_in_flight(
    client: FlaskClient, db_session: Session, org: Org, officer_headers: dict[str, str]
) -> None:
    created = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": PHONE}, "regulation": "gdpr", "org": org.name},
        headers=officer_headers,
    )
    request_id = uuid.UUID(created.get_json()["id"])
    before = _samples(metrics.render(db_session).decode())
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    db_session.add_all(
        [
            DeliveryCircuit(destination=f"https://closed-{tag}.example:443", last_success_at=now),
            DeliveryCircuit(destination=f"https://failing-{tag}.example:443", failures=2),
            DeliveryCircuit(
                destination=f"https://open-{tag}.example:443",
                failures=5,
                opened_until=now + timedelta(minutes=1),
            ),
            DeliveryCircuit(
                destination=f"https://probing-{tag}.example:443",
                failures=5,
                opened_until=now + timedelta(seconds=20),
                probe_claim_id=uuid.uuid4(),
            ),
            CallbackDelivery(
                channel=CallbackChannel.STANDARD_WEBHOOKS,
                request_id=request_id,
                leaf_id=10**12 + 7,
                event="request.received",
                body="{}",
                destination=f"https://probing-{tag}.example:443",
                claim_id=uuid.uuid4(),
                next_attempt_at=now + timedelta(seconds=20),
            ),
        ]
    )
    db_session.flush()
    text = metrics.render(db_session).decode()
    after = _samples(text)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0)

    for state in ("closed", "failing", "open", "half_open"):
        assert grew("erasure_delivery_circuits", (("state", state),)) == 1, state
    assert grew("erasure_callback_deliveries_in_flight") == 1
    assert tag not in text  # destinations are never labels
