"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import io
import json
import logging

from flask.testing import FlaskClient
from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import Org
from erasure.observability.logs import JsonFormatter, configure_logging, correlation_id, redact
from erasure.observability.models import Heartbeat


def test_healthz_and_readyz(client: FlaskClient, db_session: Session) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    db_session.execute(delete(Heartbeat))  # only ours, not those of other tests' real workers
    for component in (
        "worker:pipeline",
        "worker:ticks",
        "worker:deliveries",
        "beat",
    ):  # as a live worker and beat would write them
        db_session.add(Heartbeat(component=component, instance="host:1", beat_at=func.now()))
    db_session.flush()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
        "signing_key": "ok",
        "worker:pipeline": "ok",
        "worker:ticks": "ok",
        "worker:deliveries": "ok",
        "beat": "ok",
    }


def test_readyz_names_what_is_missing(settings: Settings, db_session: Session) -> None:
    app = create_app(
        settings.model_copy(
            update={"audit_signing_key_file": None, "broker_url": "redis://127.0.0.1:1/0"}
        ),
        session_factory=lambda: db_session,
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["signing_key"] == "not configured" and checks["broker"] == "unreachable"
    assert checks["database"] == "ok"
    assert "127.0.0.1:1" not in response.get_data(as_text=True)  # no URL in the answer


def test_metrics_expose_state_without_personal_data(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    body = {
        "subject": {"phone": "+14155559876", "email": "metrics.canary@example.org"},
        "regulation": "gdpr",
    }
    assert (
        client.post("/v1/erasure-requests", json=body, headers=officer_headers).status_code == 202
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'erasure_requests{source="api",status="received"}' in text
    assert "erasure_http_request_seconds_bucket" in text
    assert 'route="/v1/erasure-requests"' in text
    assert "erasure_outbox_unpublished" in text and "erasure_audit_unsequenced_leaves" in text
    assert "4155559876" not in text and "metrics.canary" not in text


def test_json_logs_carry_the_correlation_id_and_redact_what_slips_through() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        token = correlation_id.set("abc123def456")
        logging.getLogger("erasure.test").info(
            "sent to %s with Bearer eyJhbGciOi.eyJzdWIiOi.sig and +1 415 555 0123",
            "ana@example.com",
            extra={"request_id": "r-1"},
        )
        correlation_id.reset(token)
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "erasure-json":
                root.removeHandler(handler)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["correlation_id"] == "abc123def456" and record["request_id"] == "r-1"
    assert "ana@example.com" not in record["message"] and "[email]" in record["message"]
    assert "eyJ" not in record["message"] and "555 0123" not in record["message"]


def test_redaction_leaves_ids_alone() -> None:
    text = (
        "request 3f2a1c5e-0000-4000-8000-000000000001 target 0PA000000000001AAA log 0Xa000000000001"
    )
    assert redact(text) == text
    assert JsonFormatter().format(
        logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)
    )


def test_the_correlation_id_travels_from_the_http_request_into_the_tasks_it_causes(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    from erasure.observability import task_signals
    from erasure.outbox import messages as outbox

    response = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": "+14155552671"}, "regulation": "gdpr"},
        headers=officer_headers | {"X-Request-Id": "req-7f3a9c21"},
    )
    assert response.status_code == 202 and response.headers["X-Request-Id"] == "req-7f3a9c21"
    published: list[tuple[str, str | None]] = []
    outbox.publish_due(
        db_session,
        lambda name, args, correlation_id=None: published.append((name, correlation_id)),
    )
    assert ("erasure.resolve", "req-7f3a9c21") in published

    # In the worker, the message header becomes the task's correlation id, and its run is timed.
    class FakeRequest:
        correlation_id = "req-7f3a9c21"

    class Task:
        name = "erasure.resolve"
        request = FakeRequest()

    # Through Celery's own signals, as the worker sends them (connect() is what the worker calls).
    from celery.signals import before_task_publish, task_postrun, task_prerun

    task_signals.connect()
    task_prerun.send(sender=Task, task_id="t-1", task=Task())
    assert correlation_id.get() == "req-7f3a9c21"
    headers: dict[str, str] = {}
    before_task_publish.send(sender="erasure.confirm", headers=headers)  # a task it publishes
    assert headers == {"correlation_id": "req-7f3a9c21"}  # carries the id on
    task_postrun.send(sender=Task, task_id="t-1", task=Task(), state="SUCCESS")
    assert correlation_id.get() is None
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value(
        "erasure_task_seconds_count", {"task": "erasure.resolve", "outcome": "success"}
    )
