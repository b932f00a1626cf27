"""Intake's hot path writes through pipelined psycopg statements instead of the ORM's unit of work
(issue 14): the same rows, the same locks, fewer round trips. These tests hold it to the promises
the ORM path kept: concurrent submissions for one subject are linked to one request, each has its
leaf and its outbox row, and no column the ORM would have filled is left to chance."""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import erasure.tables  # noqa: F401  # every table on the metadata, however the tests run
from erasure import db, task_names, workflow
from erasure.access import intake as access_intake
from erasure.api import idempotency
from erasure.audit import leaves
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, SubjectIdentifier
from erasure.db import make_engine, make_sessionmaker
from erasure.outbox import messages
from erasure.outbox.models import OutboxMessage
from tests.support.databases import SteppedClock, terminate
from tests.support.list_scale import ROWS_READ_SQL, seed
from tests.support.web import Committed, LiveServer

#: Every INSERT the hot path sends, by table.
INSERTS = {
    "erasure_requests": workflow.INSERT_REQUEST_SQL,
    "subject_identifiers": workflow.INSERT_IDENTIFIER_SQL,
    "audit_leaves": leaves.INSERT_SQL,
    "outbox": messages.INSERT_SQL,
    "idempotency_records": idempotency.INSERT_SQL,
    "access_requests": access_intake.INSERT_ACCESS_SQL,
    "access_identifiers": access_intake.INSERT_ACCESS_IDENTIFIER_SQL,
}


def _inserted_columns(sql: str) -> set[str]:
    match = re.match(r"INSERT INTO \w+ \(([^)]*)\)", sql)
    assert match is not None, sql
    return {name.strip() for name in match.group(1).split(",")}


@pytest.mark.parametrize("table", sorted(INSERTS))
def test_every_column_the_orm_would_fill_is_written(table: str) -> None:
    """A column with a Python-side default, or NOT NULL, must be named by the hot path's INSERT
    unless the database fills it (a server default, an identity): otherwise a model change would
    silently store NULL, or fail only on the hot path."""
    columns = _inserted_columns(INSERTS[table])
    for column in db.metadata.tables[table].columns:
        if column.server_default is not None or column.identity is not None:
            continue
        if column.default is not None or not column.nullable:
            assert column.name in columns, f"{table}.{column.name} is not written"


def test_a_submission_sends_no_statement_through_the_orm(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    body = {"subject": {"phone": "+14155550100"}, "regulation": "gdpr", "org": org.name}
    # The first request reads the API key (cached afterwards).
    client.post("/v1/erasure-requests", json=body, headers=officer_headers)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "SAVEPOINT" not in statement:  # the test session's commits release savepoints
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        headers = officer_headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        response = client.post("/v1/erasure-requests", json=body, headers=headers)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert response.status_code == 202
    assert statements == []
    request_id = uuid.UUID(response.get_json()["id"])
    # And everything was written: linked to the first request, one leaf, one outbox row.
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None and stored.duplicate_of_id is not None
    assert (
        db_session.scalar(
            select(func.count()).select_from(AuditLeaf).where(AuditLeaf.request_id == request_id)
        )
        == 1
    )
    outbox_args = db_session.scalars(
        select(OutboxMessage.args).where(OutboxMessage.task_name == task_names.RESOLVE)
    ).all()
    assert [str(request_id), 0] in outbox_args


def test_concurrent_submissions_for_one_subject_link_to_one_request(
    live_server: LiveServer, committed: Committed
) -> None:
    """The subject lock and the duplicate lookup travel in one round trip; the lookup is a later
    statement than the lock, so each submission sees the ones committed before it."""
    phone = f"+1415555{uuid.uuid4().int % 10000:04d}"
    body = {"subject": {"phone": phone}, "regulation": "gdpr", "org": committed.org_name}
    start = threading.Barrier(20)

    def post(_: int) -> requests.Response:
        start.wait()
        headers = committed.headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        return requests.post(
            f"{live_server.url}/v1/erasure-requests", json=body, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(post, range(20)))
    assert [r.status_code for r in responses] == [202] * 20
    answered = {uuid.UUID(r.json()["id"]): r.json()["duplicate_of"] for r in responses}
    with live_server.sessionmaker() as session:
        rows = session.execute(
            select(ErasureRequest.id, ErasureRequest.duplicate_of_id)
            .join(Org)
            .where(Org.name == committed.org_name)
        ).all()
        roots = [request_id for request_id, linked in rows if linked is None]
        assert len(roots) == 1 and len(rows) == 20
        assert {linked for _, linked in rows if linked is not None} == {roots[0]}
        assert {request_id for request_id, _ in rows} == set(answered)
        # The answer names the link it stored (the same key submitted all of them).
        assert all(
            (linked is None) == (request_id == roots[0]) for request_id, linked in answered.items()
        )
        ids = [request_id for request_id, _ in rows]
        leaf_counts = session.execute(
            select(AuditLeaf.request_id, func.count())
            .where(AuditLeaf.request_id.in_(ids))
            .group_by(AuditLeaf.request_id)
        ).all()
        assert sorted(count for _, count in leaf_counts) == [1] * 20
        identifiers = session.scalar(
            select(func.count())
            .select_from(SubjectIdentifier)
            .where(SubjectIdentifier.request_id.in_(ids))
        )
        assert identifiers == 20
        queued = {
            args[0]
            for args in session.scalars(
                select(OutboxMessage.args).where(OutboxMessage.task_name == task_names.RESOLVE)
            )
        }
        assert {str(i) for i in ids} <= queued


def test_a_lost_connection_in_a_pipeline_is_a_database_outage_and_empties_the_pool(
    database_url: str,
) -> None:
    """Pipelined statements bypass SQLAlchemy's execution, not its promises: a connection that
    died is answered as SQLAlchemy would (a DBAPIError that `database_unavailable` recognises,
    so the API says 503), and the next session gets a live connection."""
    # A clock that stands still: the connection is always within the bound, never pinged.
    engine = make_engine(database_url, pool_size=1, ping_idle_after_s=10, clock=SteppedClock())
    maker = make_sessionmaker(engine)
    try:
        with maker() as session:
            first = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            session.commit()
        terminate(database_url, first)
        with (
            maker() as session,
            pytest.raises(DBAPIError) as caught,
            db.pipelined(session) as connection,
        ):
            connection.execute("SELECT 1")
        assert db.database_unavailable(caught.value)
        with maker() as session:
            assert int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()) != first
    finally:
        engine.dispose()


def _psycopg_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement psycopg sends from now on (one per row of an executemany), as text:
    observed at the driver, not replaced."""
    sent: list[str] = []
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted_execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    def counted_executemany(
        self: psycopg.Cursor[Any], query: Any, params_seq: Any, *args: Any, **kwargs: Any
    ) -> Any:
        rows = list(params_seq)
        sent.extend(str(query) for _ in rows)
        return executemany(self, query, rows, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", counted_executemany)
    return sent


@pytest.mark.parametrize(
    ("path", "subject", "expected"),
    [
        # The key's claim (its lock, then its record) with the org, the subject locks and the
        # duplicate lookup; the writes (request, identifiers, leaf, outbox row, key record).
        ("/v1/erasure-requests", {"phone": "+14155550142", "email": "s142@example.com"}, 2),
        # The key's claim with the org; the writes as one statement.
        ("/v1/access-requests", {"phone": "+14155550143", "email": "s143@example.com"}, 2),
    ],
)
def test_a_submission_sends_a_few_statements_however_many_identifiers(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    subject: dict[str, str],
    expected: int,
) -> None:
    """Each statement costs the API worker CPU whatever it does (psycopg builds, sends and reads
    it): a submission's writes go as one statement, and the key's claim, its locks and the org
    lookup as another (issue 14). BEGIN and COMMIT are not counted: SQLAlchemy sends them, once
    per transaction."""
    body = {"regulation": "gdpr", "org": org.name}
    client.post(path, json=body | {"subject": subject}, headers=officer_headers)  # caches the key
    sent = _psycopg_statements(monkeypatch)
    headers = officer_headers | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    response = client.post(path, json=body | {"subject": subject}, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    # The test's session wraps each request in a savepoint; the service never sends one.
    statements = [sql for sql in sent if "SAVEPOINT" not in sql]
    assert len(statements) == expected, statements
    # What they wrote is whole: a replay of the key answers the same request.
    replay = client.post(path, json=body | {"subject": subject}, headers=headers)
    assert replay.status_code == 202 and replay.get_json()["id"] == response.get_json()["id"]


def test_the_duplicate_lookup_reads_the_index_whatever_plan_postgres_caches(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    """psycopg prepares a statement run five times on a connection, and after five more runs
    Postgres keeps a generic plan, made without the identifiers' values, when it looks no worse
    than theirs; it keeps it until the table's statistics change. For the duplicate lookup
    (`blind_index = ANY(...)`) the plan made while the table was small was a sequential scan of
    every identifier, kept as the table grew: the intake bench slowed by 1.7x within minutes.
    Here the plan is made on a small table, then the table grows; the lookup must still go
    through the index."""
    db_session.execute(text("ANALYZE subject_identifiers"))
    body = {"regulation": "gdpr", "org": org.name}

    def sequential_scans() -> int:
        return int(
            db_session.execute(
                text(
                    "SELECT seq_scan FROM pg_stat_xact_user_tables "
                    "WHERE relname = 'subject_identifiers'"
                )
            ).scalar_one()
        )

    def submit(n: int) -> None:
        subject = {"email": f"plan-{n}-{uuid.uuid4().hex[:6]}@example.com"}
        response = client.post(
            "/v1/erasure-requests", json=body | {"subject": subject}, headers=officer_headers
        )
        assert response.status_code == 202, response.get_data(as_text=True)

    for n in range(16):  # prepared, then planned generically, on a small table
        submit(n)
    seed(db_session, org, 5000)  # then the table grows: other subjects, one identifier each
    db_session.execute(
        text(
            "INSERT INTO subject_identifiers (request_id, kind, blind_index) "
            "SELECT id, 'email', sha256(convert_to(CAST(id AS text), 'UTF8')) "
            "FROM erasure_requests WHERE org_id = :org AND source <> 'api'"
        ),
        {"org": org.id},
    )
    before = sequential_scans()
    for n in range(16, 24):
        submit(n)
    assert sequential_scans() == before


def test_the_lookups_planner_settings_hold_only_inside_it(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    """The lookup runs with sequential scans off, generic plans and no JIT (its function's own
    settings); the rest of the transaction, here the test's, is planned as configured."""
    settings = text(
        "SELECT current_setting('enable_seqscan'), current_setting('plan_cache_mode'), "
        "current_setting('jit')"
    )
    before = tuple(db_session.execute(settings).one())
    subject = {"email": f"settings-{uuid.uuid4().hex[:6]}@example.com"}
    response = client.post(
        "/v1/erasure-requests",
        json={"regulation": "gdpr", "org": org.name, "subject": subject},
        headers=officer_headers,
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert tuple(db_session.execute(settings).one()) == before


@pytest.mark.parametrize("statistics", ["fresh", "stale"])
def test_a_new_subjects_duplicate_lookup_reads_no_other_request(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    statistics: str,
) -> None:
    """The lookup must read the requests that share an identifier, never the org's others, with
    any statistics. Seen in the intake bench at a few thousand requests, for a new subject: under
    ORDER BY created_at LIMIT 1 Postgres walked the created_at index testing every request
    against the (empty) list of matches (1.2 ms, 5,561 buffers per submission); with statistics
    never taken, it took the org's requests by `org_id` and filtered them (that case needs a
    database of its own: tests/intake/test_lookup_on_a_new_database.py)."""
    if statistics == "stale":  # analysed while the org had a few requests, then it grew
        seed(db_session, org, 40)
        db_session.execute(text("ANALYZE erasure_requests"))
        seed(db_session, org, 5000)
    else:
        seed(db_session, org, 5000)
        db_session.execute(text("ANALYZE erasure_requests"))
    db_session.execute(text("ANALYZE subject_identifiers"))
    body = {"regulation": "gdpr", "org": org.name}

    def requests_read() -> int:
        read = db_session.connection().exec_driver_sql(ROWS_READ_SQL, {"table": "erasure_requests"})
        return int(read.scalar_one())

    for n in range(8):
        before = requests_read()
        subject = {"email": f"fresh-{n}-{uuid.uuid4().hex[:6]}@example.com"}
        response = client.post(
            "/v1/erasure-requests", json=body | {"subject": subject}, headers=officer_headers
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        assert requests_read() - before < 20


def test_the_answer_to_a_submission_is_what_reading_the_request_answers(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    """The 202 is rendered from the values just written, not from a row read back: every field
    must match a later read of the same request (but the notes, which only a read reveals)."""
    subject = {"phone": "+14155550142", "email": "answer@example.com"}
    body = {
        "subject": subject,
        "regulation": "ccpa",
        "org": org.name,
        "reference": {"system": "jira", "id": "PRIV-42", "url": "https://jira.example/PRIV-42"},
        "notes": "called twice",
        "received_at": "2026-11-30T09:15:00Z",
    }
    first = client.post("/v1/erasure-requests", json=body, headers=officer_headers)
    # A second one for the same subject is linked to the first: duplicate_of is rendered too.
    again = client.post("/v1/erasure-requests", json=body, headers=officer_headers)
    for response in (first, again):
        assert response.status_code == 202, response.get_data(as_text=True)
        answered = response.get_json()
        read = client.get(f"/v1/erasure-requests/{answered['id']}", headers=officer_headers)
        assert read.status_code == 200
        stored = read.get_json()
        assert stored.pop("notes") == "called twice" and answered.pop("notes") is None
        assert answered == stored
    assert again.get_json()["duplicate_of"] == first.get_json()["id"]
