"""A large table of requests for the list tests, and the SQL statements the app sends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from erasure.core.models import Org

#: Statements the test harness adds around the app's own (the session joins the test's
#: transaction through savepoints); production has none of them.
HARNESS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
STATUSES = ["received", "completed", "completed", "deleting", "cancelled", "completed"]
SOURCES = ["api", "jira", "zendesk", "ui"]


def seed(
    session: Session,
    org: Org,
    n: int,
    *,
    api_key_id: uuid.UUID | None = None,
    other_key_id: uuid.UUID | None = None,
    start: datetime | None = None,
    same_time_every: int = 1,
) -> None:
    """`n` requests (one target each, every fifth linked to an earlier one), created one minute
    apart, or `same_time_every` at a time at the same instant (ties on created_at)."""
    start = start or datetime.now(UTC) - timedelta(days=400)
    session.execute(
        text(
            """
            INSERT INTO erasure_requests (org_id, source, reference_system, reference_id,
                regulation, received_at, due_at, status, api_key_id, is_at_risk,
                created_at, updated_at)
            SELECT :org, (CAST(:sources AS text[]))[1 + g % 4], CASE WHEN g % 3 = 0 THEN 'jira' END,
                CASE WHEN g % 3 = 0 THEN 'T-' || (g % 7) END, 'gdpr', t, t + interval '30 days',
                (CAST(:statuses AS text[]))[1 + g % 6],
                CASE WHEN g % 2 = 0 THEN CAST(:key AS uuid) ELSE CAST(:other AS uuid) END,
                g % 11 = 0, t, t
            FROM generate_series(1, :n) AS g,
                LATERAL (SELECT CAST(:start AS timestamptz) + (g / CAST(:same AS int)) * interval '1 minute' AS t) AS at
            """
        ),
        {
            "org": org.id,
            "sources": SOURCES,
            "statuses": STATUSES,
            "key": api_key_id,
            "other": other_key_id,
            "n": n,
            "start": start,
            "same": same_time_every,
        },
    )
    session.execute(
        text(
            """
            INSERT INTO targets (request_id, org_id, kind, status, due_at)
            SELECT id, org_id, 'conversation', 'pending', due_at FROM erasure_requests
            WHERE org_id = :org
            """
        ),
        {"org": org.id},
    )
    # Every fifth request links to one created one or two before it (of either submitter).
    session.execute(
        text(
            """
            UPDATE erasure_requests AS r SET duplicate_of_id = p.prev
            FROM (SELECT id, k, lag(id, CAST(1 + (k / 10) % 2 AS int)) OVER (ORDER BY created_at, id) AS prev
                  FROM (SELECT id, created_at,
                               row_number() OVER (ORDER BY created_at, id) AS k
                        FROM erasure_requests WHERE org_id = :org) AS numbered) AS p
            WHERE r.id = p.id AND p.k % 5 = 0
            """
        ),
        {"org": org.id},
    )
    session.flush()


def seed_pending_records(session: Session, org: Org, n: int) -> None:
    """`n` requests of the org (`seed`, none analysed yet), each with a pending target on a
    MessagingEndUser record of its own: 0PA000000000001, 0PA000000000002, ... in id order."""
    seed(session, org, n)
    session.execute(
        text(
            "INSERT INTO targets (request_id, org_id, kind, salesforce_id, status, due_at) "
            "SELECT id, org_id, 'messaging_end_user', "
            "'0PA' || lpad(to_hex(row_number() OVER (ORDER BY id)), 12, '0'), 'pending', due_at "
            "FROM erasure_requests WHERE org_id = :org"
        ),
        {"org": org.id},
    )


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs (harness savepoints left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if not sql.lstrip().upper().startswith(HARNESS):
            seen.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON query plan, depth first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def analyze(session: Session, statement: Any) -> list[dict[str, Any]]:
    """The nodes of the plan Postgres ran for `statement` (EXPLAIN ANALYZE, JSON)."""
    compiled = statement.compile(
        dialect=postgresql.psycopg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    plan = (
        session.connection()
        .exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + str(compiled), compiled.params)
        .scalar_one()
    )
    return list(plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))


def scans_of(session: Session, statement: Any, relation: str) -> int:
    """How many times the plan Postgres ran for `statement` read `relation` (its nodes' loops):
    1 for one pass, one per outer row for a lookup run inside a loop."""
    return sum(
        int(node.get("Actual Loops", 0))
        for node in analyze(session, statement)
        if node.get("Relation Name") == relation
    )


#: The rows of table `%(table)s` this transaction has read, by scans or through an index
#: (pg_stat_xact_user_tables: the transaction's own counts, reads inside a function included,
#: whose plan EXPLAIN does not show). A driver-level statement: psycopg's parameter style.
ROWS_READ_SQL = (
    "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
    "FROM pg_stat_xact_user_tables WHERE relname = %(table)s"
)
