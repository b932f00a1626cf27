"""Intake overlaps the rate limiter's Redis round trip with its first database round trip
(issue 14). The limits hold as before: a refused submission is answered 429 and writes nothing,
a caller refused for failed authentications never reaches the database, and every other view
reads the verdict before it runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import redis
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from erasure.access.models import AccessRequest
from erasure.accounts.models import Role
from erasure.api.models import IdempotencyRecord
from erasure.core.models import ErasureRequest, Org
from erasure.web import limits
from erasure.web.limits import RedisCounters, Verdict, Window
from erasure.web.resources import get_session
from tests.support.processes import RedisServer
from tests.support.web import AppMaker, KeyMaker


class WatchedCounters(RedisCounters):
    """The real Redis counters; notes, when each verdict is read, whether the request's
    database connection had its first batch on the way (pipeline mode)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.read_in_pipeline: list[bool] = []

    def start_check(
        self, rate_key: str | None, rate: Window, fail_keys: Sequence[str], fails: Window
    ) -> Callable[[], Verdict]:
        finish = super().start_check(rate_key, rate, fail_keys, fails)

        def watched() -> Verdict:
            driver = get_session().connection().connection.driver_connection
            self.read_in_pipeline.append(driver.pgconn.pipeline_status != 0)
            return finish()

        return watched


def _app(
    make_app: AppMaker, redis_server: RedisServer, **options: int
) -> tuple[Flask, WatchedCounters]:
    app = make_app(redis_url=redis_server.url, **options)
    counters = WatchedCounters(redis.Redis.from_url(redis_server.url))
    limits.install(app, counters)
    return app, counters


def _body(org: Org) -> dict[str, object]:
    return {"subject": {"phone": "+14155550123"}, "regulation": "gdpr", "org": org.name}


def test_a_submission_reads_the_verdict_while_its_first_batch_travels(
    make_app: AppMaker, make_key: KeyMaker, redis_server: RedisServer, org: Org
) -> None:
    app, counters = _app(make_app, redis_server, rate_limit_requests=100)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
    # The first request reads the key (and records its use): the verdict comes first.
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 200
    for path in ("/v1/erasure-requests", "/v1/access-requests"):
        keyed = headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        assert client.post(path, json=_body(org), headers=keyed).status_code == 202
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 200
    assert counters.read_in_pipeline == [False, True, True, False]


def test_a_submission_over_its_rate_is_429_and_writes_nothing(
    make_app: AppMaker,
    make_key: KeyMaker,
    redis_server: RedisServer,
    org: Org,
    db_session: Session,
) -> None:
    app, _ = _app(make_app, redis_server, rate_limit_requests=2)
    client = app.test_client()
    for path, model in (
        ("/v1/erasure-requests", ErasureRequest),
        ("/v1/access-requests", AccessRequest),
    ):
        headers = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
        for _ in range(2):
            keyed = headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
            assert client.post(path, json=_body(org), headers=keyed).status_code == 202
        refused_key = f"refused-{uuid.uuid4()}"
        keyed = headers | {"Idempotency-Key": f'"{refused_key}"'}
        refused = client.post(path, json=_body(org), headers=keyed)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        count = select(func.count()).select_from(model).where(model.org_id == org.id)  # type: ignore[attr-defined]
        assert db_session.scalar(count) == 2
        stored = select(func.count()).where(IdempotencyRecord.key == refused_key)
        assert db_session.scalar(stored) == 0
        # A bad body from a refused caller is 429 too, as if the verdict came first.
        bad = client.post(path, json={"subject": {}}, headers=headers)
        assert bad.status_code == 429


def test_a_caller_throttled_for_failures_never_reaches_the_database(
    make_app: AppMaker, redis_server: RedisServer, org: Org
) -> None:
    app, _ = _app(make_app, redis_server, auth_failure_limit=2, auth_failure_window_s=300)
    client = app.test_client()
    forged = {"Authorization": "Bearer ek_333333333333_wrong"}
    assert [
        client.post("/v1/erasure-requests", json=_body(org), headers=forged).status_code
        for _ in range(2)
    ] == [401, 401]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "SAVEPOINT" not in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        refused = client.post("/v1/erasure-requests", json=_body(org), headers=forged)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert refused.status_code == 429
    assert statements == []
