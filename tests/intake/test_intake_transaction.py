"""A submission's transaction is its pipeline (issue 14): when nothing else ran in the request's
transaction, intake's statements run as one implicit transaction that the pipeline's closing Sync
commits, so no BEGIN and no COMMIT cost round trips of their own. These tests hold it to that and
to what an explicit transaction promised: every outcome leaves the pooled connection as the pool
expects it (not in autocommit, idle), and nothing a failed submission sent stays written.

Tests over the in-process client run inside a savepoint of the test's transaction, where intake
keeps to the session's transaction; these run on a live server, on committed data, as production
does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from psycopg.pq import TransactionStatus
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from erasure.api.models import IdempotencyRecord
from erasure.core.models import ErasureRequest, Org
from tests.support.web import Committed, LiveServer


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The transaction commands psycopg sends from now on (BEGIN, COMMIT, ROLLBACK): observed at
    the driver, not replaced."""
    sent: list[bytes] = []
    original = psycopg.Connection._exec_command

    def counted(self: psycopg.Connection[Any], command: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(command if isinstance(command, bytes) else str(command).encode())
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "_exec_command", counted)
    return sent


@pytest.fixture
def checkins(engine: Engine) -> Iterator[list[tuple[bool, TransactionStatus]]]:
    """Each pooled connection's state as it goes back to the pool: (autocommit, status)."""
    seen: list[tuple[bool, TransactionStatus]] = []

    def checked_in(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            seen.append((dbapi_connection.autocommit, dbapi_connection.pgconn.transaction_status))

    event.listen(engine, "checkin", checked_in)
    yield seen
    event.remove(engine, "checkin", checked_in)


def _post(
    server: LiveServer, committed: Committed, body: dict[str, Any], key: str | None
) -> requests.Response:
    headers = dict(committed.headers)
    if key is not None:
        headers["Idempotency-Key"] = f'"{key}"'
    return requests.post(
        f"{server.url}/v1/erasure-requests", json=body, headers=headers, timeout=30
    )


def _body(committed: Committed, **overrides: Any) -> dict[str, Any]:
    phone = f"+1415556{uuid.uuid4().int % 10000:04d}"
    return {
        "subject": {"phone": phone},
        "regulation": "gdpr",
        "org": committed.org_name,
    } | overrides


def test_a_submission_sends_no_begin_and_no_commit(
    live_server: LiveServer, committed: Committed, commands: list[bytes]
) -> None:
    """Reads, then writes, then the Sync that commits them: two round trips, where BEGIN and
    COMMIT each cost one more. What was written is committed: another session reads it."""
    assert _post(live_server, committed, _body(committed), None).status_code == 202  # caches key
    commands.clear()
    response = _post(live_server, committed, _body(committed), str(uuid.uuid4()))
    assert response.status_code == 202, response.text
    assert [c for c in commands if c.split()[0] in (b"BEGIN", b"COMMIT", b"ROLLBACK")] == []
    with live_server.sessionmaker() as session:
        stored = session.get(ErasureRequest, uuid.UUID(response.json()["id"]))
        assert stored is not None and stored.status.value == "received"


def test_a_submission_checks_out_its_connection_without_the_orm_session(
    live_server: LiveServer, committed: Committed
) -> None:
    """The session's transaction machinery (begin, connection, commit, close) cost a submission
    more CPU than a bare pool checkout; when nothing else ran in the request, intake takes its
    pooled connection directly. The connection is still the pool's (its events fire)."""
    assert _post(live_server, committed, _body(committed), None).status_code == 202  # caches key
    begun: list[object] = []

    def began(session: object, _transaction: object, _connection: object) -> None:
        begun.append(session)

    event.listen(Session, "after_begin", began)
    try:
        for _ in range(3):
            response = _post(live_server, committed, _body(committed), str(uuid.uuid4()))
            assert response.status_code == 202, response.text
    finally:
        event.remove(Session, "after_begin", began)
    assert begun == []
    with live_server.sessionmaker() as session:
        assert session.get(ErasureRequest, uuid.UUID(response.json()["id"])) is not None


def test_every_outcome_hands_the_pool_a_connection_out_of_autocommit(
    live_server: LiveServer,
    committed: Committed,
    checkins: list[tuple[bool, TransactionStatus]],
) -> None:
    """Accepted, replayed, refused (a key reused with another body), unknown org, invalid body:
    the connection goes back to the pool idle and in the pool's own mode, so the next request to
    check it out gets a transaction of its own, as every other code path expects."""
    key = str(uuid.uuid4())
    body = _body(committed)
    outcomes = [
        _post(live_server, committed, body, key).status_code,
        _post(live_server, committed, body, key).status_code,  # replay
        _post(live_server, committed, _body(committed), key).status_code,  # another body
        _post(live_server, committed, _body(committed, org="no-such-org"), None).status_code,
        _post(live_server, committed, _body(committed, regulation="none"), None).status_code,
    ]
    assert outcomes[:3] == [202, 202, 422] and outcomes[3] >= 400 and outcomes[4] == 422, outcomes
    assert checkins, "no connection went back to the pool"
    assert all(state == (False, TransactionStatus.IDLE) for state in checkins), checkins


def test_a_refused_submission_leaves_nothing_written(
    live_server: LiveServer, committed: Committed
) -> None:
    """The reads committed by the Sync of a refused submission (unknown org, here after its
    subject locks and duplicate lookup ran) wrote nothing: no request, no key record."""
    key = str(uuid.uuid4())
    refused = _post(live_server, committed, _body(committed, org="no-such-org"), key)
    assert refused.status_code >= 400
    with live_server.sessionmaker() as session:
        requests_in_org = session.scalar(
            select(func.count())
            .select_from(ErasureRequest)
            .join(Org)
            .where(Org.name == committed.org_name)
        )
        records = session.scalar(
            select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.key == key)
        )
    assert (requests_in_org, records) == (0, 0)
