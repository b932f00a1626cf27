"""Heartbeats in the production shape: a real `celery worker` and beat, separate processes on the
real broker and database, stamp their heartbeats; the API's /readyz (another process, here the
test's) is ready while they live and names both once they are killed."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from erasure.app import create_app
from erasure.config import Settings
from erasure.observability.models import Heartbeat
from tests.support.processes import RedisServer, Worker, worker_env
from tests.support.standalone import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

FAST = {"ERASURE_HEARTBEAT_INTERVAL_S": "0.5", "ERASURE_HEARTBEAT_TIMEOUT_S": "3"}


def test_worker_and_beat_heartbeats_drive_readiness(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    app = create_app(
        settings.model_copy(update={"broker_url": redis_server.url, "heartbeat_timeout_s": 3.0})
    )
    client = app.test_client()
    env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
    worker = Worker({**env, **FAST}, tmp_path, beat=True)
    worker.start()
    try:
        _ready_then_not(client, engine, worker)
    finally:
        worker.kill_all()
        app.extensions["erasure"].session_factory.kw["bind"].dispose()  # the app's own engine


def _ready_then_not(client: FlaskClient, engine: Engine, worker: Worker) -> None:
    def stamped() -> set[str]:
        with engine.connect() as connection:
            return set(connection.scalars(select(Heartbeat.component)))

    wait_for(
        lambda: {"worker:pipeline", "worker:ticks", "worker:deliveries", "beat"} <= stamped(),
        "the first heartbeats",
        timeout=120,
    )
    wait_for(lambda: client.get("/readyz").status_code == 200, "/readyz to be ready", timeout=60)

    worker.kill_all()  # kill -9 of the worker, its pool and its embedded beat

    def both_silent() -> dict[str, str] | None:
        response = client.get("/readyz")
        checks: dict[str, str] = response.get_json()["checks"]
        silent = all(checks[c] != "ok" for c in ("worker:pipeline", "worker:deliveries", "beat"))
        return checks if response.status_code == 503 and silent else None

    # Each goes stale on its own clock: wait for both.
    checks = wait_for(both_silent, "/readyz to notice both", timeout=60)
    assert checks["worker:pipeline"].startswith("no heartbeat for "), checks
    assert checks["worker:deliveries"].startswith("no heartbeat for "), checks
    assert checks["beat"].startswith("no heartbeat for "), checks
    assert checks["database"] == "ok" and checks["broker"] == "ok", checks
