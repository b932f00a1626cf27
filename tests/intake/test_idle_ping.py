"""The API's pool pings a connection only after it idled longer than the bound: a connection
that idled and died is replaced without an error; one used within the bound is not pinged, so
its death costs exactly one failed statement, after which the pool is healthy again. Real
Postgres, a real backend termination, an injected clock."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from erasure.db import database_unavailable, make_engine
from tests.support.databases import SteppedClock, terminate


def backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


def test_a_dead_connection_that_idled_past_the_bound_is_replaced_silently(
    database_url: str, clock: SteppedClock
) -> None:
    engine = make_engine(database_url, pool_size=1, ping_idle_after_s=10, clock=clock)
    try:
        first = backend(engine)
        terminate(database_url, first)
        clock.now += 10
        assert backend(engine) != first  # pinged, found dead, replaced: no error
    finally:
        engine.dispose()


def test_a_connection_used_within_the_bound_is_not_pinged(
    database_url: str, clock: SteppedClock
) -> None:
    engine = make_engine(database_url, pool_size=1, ping_idle_after_s=10, clock=clock)
    try:
        first = backend(engine)
        same = backend(engine)
        assert same == first  # reused
        terminate(database_url, first)
        clock.now += 9.9
        with pytest.raises(OperationalError) as failure:
            backend(engine)  # no ping: the dead connection is used once ...
        assert database_unavailable(failure.value)  # ... and the API answers 503, retryable
        assert backend(engine) != first  # the pool was emptied: the next request is served
    finally:
        engine.dispose()
