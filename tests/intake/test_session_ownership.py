"""An app given a factory of fresh sessions closes each request's session at teardown.

Seen under load in the full suite: the canary run's app was given such a factory and never closed
its sessions, so each answered request kept a connection checked out until the garbage collector
ran; on a busy machine a polling loop drained the pool and a sign-in answered 500.
"""

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker


@pytest.fixture
def small_pool(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, pool_size=1)  # one connection, one overflow
    engine.pool._timeout = 2  # type: ignore[attr-defined]  # fail fast instead of 30 s
    yield engine
    gc.collect()
    engine.dispose()


@pytest.fixture
def no_collection() -> Iterator[None]:
    """Unreachable sessions are not collected in between: the state of a busy process."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_owned_sessions_are_closed_after_each_request(
    settings: Settings, small_pool: Engine, no_collection: None
) -> None:
    factory = make_sessionmaker(small_pool)
    with factory() as session:
        key = create_api_key(session, name="pool", role=Role.AUDITOR).secret
        session.commit()
    app = create_app(settings, session_factory=factory, owns_sessions=True)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    answers = [client.get("/v1/erasure-requests", headers=headers) for _ in range(6)]  # 3x the pool
    assert [answer.status_code for answer in answers] == [200] * 6
    for answer in answers:
        answer.close()
    assert small_pool.pool.checkedout() == 0  # type: ignore[attr-defined]
