"""Readiness follows the heartbeats of the worker(s) and beat, written to the database by those
processes (so it works with any number of hosts), and a database outage answers 503 with
Retry-After instead of 500: in /readyz, in the API (problem+json) and in the console (plain page).

The outage is real: the app is pointed at a port where no Postgres listens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from erasure.app import create_app
from erasure.config import Settings
from erasure.observability import heartbeats
from erasure.observability.models import Heartbeat
from tests.support.console import csrf_of
from tests.support.processes import free_port

DEAD_URL = "postgresql+psycopg://postgres@127.0.0.1:{port}/erasure"


@pytest.fixture(autouse=True)
def _no_heartbeats_yet(db_session: Session) -> None:
    """Real workers of other tests commit heartbeats to this database: start from none (the
    deletion is rolled back with the test)."""
    db_session.execute(delete(Heartbeat))


def _beat(
    session: Session, component: str, age_s: float = 0.0, instance: str = "test-host:1"
) -> None:
    session.add(
        Heartbeat(
            component=component,
            instance=instance,
            beat_at=func.now() - timedelta(seconds=age_s),
        )
    )
    session.flush()


def test_readyz_is_ready_with_fresh_heartbeats_of_each_worker_queue_and_beat(
    client: FlaskClient, db_session: Session, settings: Settings
) -> None:
    expected = heartbeats.expected_components(heartbeats.queues_of(settings))
    assert "beat" in expected and "worker:pipeline" in expected
    for component in expected:
        _beat(db_session, component)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    checks = response.get_json()["checks"]
    assert all(checks[component] == "ok" for component in expected), checks


@pytest.mark.parametrize("silent", ["beat", "worker:pipeline", "worker:ticks", "worker:deliveries"])
def test_readyz_fails_naming_a_process_whose_heartbeat_is_missing_or_stale(
    client: FlaskClient, db_session: Session, settings: Settings, silent: str
) -> None:
    expected = heartbeats.expected_components(heartbeats.queues_of(settings))
    for component in expected:
        if component != silent:
            _beat(db_session, component)
    missing = client.get("/readyz")
    assert missing.status_code == 503
    assert missing.get_json()["checks"][silent] == "no heartbeat yet"

    bound = settings.heartbeat_timeout_s
    _beat(db_session, silent, age_s=bound + 5)
    stale = client.get("/readyz")
    assert stale.status_code == 503
    checks = stale.get_json()["checks"]
    assert checks[silent].startswith("no heartbeat for "), checks
    assert [name for name, result in checks.items() if result != "ok"] == [silent]

    _beat(db_session, silent, instance="test-host:2")  # another one, alive: one is enough
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def down(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "database_url": DEAD_URL.format(port=free_port()),
            "secret_key": SecretStr("k" * 40),  # the console on
        }
    )


@pytest.fixture
def down_app(down: Settings) -> Flask:
    return create_app(down)


def test_readyz_during_a_database_outage_names_the_database_and_no_url(
    down_app: Flask, down: Settings
) -> None:
    response = down_app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "unreachable"
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_a_submission_during_a_database_outage_is_503_with_retry_after(down_app: Flask) -> None:
    response = down_app.test_client().post(
        "/v1/erasure-requests",
        json={"subject": {"phone": "+14155550100"}, "regulation": "gdpr"},
        headers={"Authorization": "Bearer ek_0123456789ab_notarealkeybutwellformed00"},
    )
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    assert body["code"] == "database_unavailable" and body["status"] == 503
    assert body["correlation_id"] == response.headers["X-Request-Id"]
    text = response.get_data(as_text=True)
    assert "127.0.0.1" not in text and "OperationalError" not in text and "psycopg" not in text


def test_the_console_during_a_database_outage_shows_its_plain_page_with_503(
    down_app: Flask,
) -> None:
    client = down_app.test_client()
    form = csrf_of(client.get("/ui/sign-in").get_data(as_text=True))
    response = client.post(
        "/ui/sign-in",
        data={"csrf_token": form, "email": "ana@example.org", "password": "x" * 16},
    )
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    text = response.get_data(as_text=True)
    assert "OperationalError" not in text and "127.0.0.1" not in text
