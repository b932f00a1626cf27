"""Lists stay flat as the table grows: a page is at most three SQL statements whatever the filter
and depth (API, console list, CSV export), the cursor is an index condition in Postgres' plan (not
a filter), and the row-comparison cursor walks ties on created_at exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.core import request_pages
from erasure.core.models import ErasureRequest, Org, RequestStatus

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


API_FILTERS = [
    "",
    "status=received",
    "status=received,completed,cancelled",
    "source=jira",
    "reference_system=jira",
    "reference_id=T-3",
    "reference_system=jira&reference_id=T-3",
    "due_before=2100-01-01T00:00:00Z",
    "status=completed&source=api&limit=200",
]


@pytest.mark.parametrize("role", [Role.OFFICER, Role.INTEGRATION])
def test_every_api_page_is_at_most_three_statements(
    client: FlaskClient, org: Org, db_session: Session, engine: Engine, role: Role
) -> None:
    key = create_api_key(db_session, name="lister", role=role)
    other = create_api_key(db_session, name="other", role=Role.INTEGRATION)
    db_session.flush()
    seed(db_session, org, 600, api_key_id=key.record.id, other_key_id=other.record.id)
    headers = {"Authorization": f"Bearer {key.secret}"}
    for query in API_FILTERS:
        url: str | None = f"/v1/erasure-requests?limit=20&{query}"
        pages = 0
        while url and pages < 3:  # the first page and two cursor pages
            with statements(engine) as seen:
                response = client.get(url, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            # authenticate, the page (org and link owner joined), the targets' states; and, on
            # the key's first use in a minute only, the one UPDATE recording that use.
            uses = [sql for sql in seen if sql.lstrip().startswith("UPDATE api_keys")]
            if (query, pages) == (API_FILTERS[0], 0):
                assert len(uses) == 1, seen
            else:  # a later request records again only once a minute has passed (a slow run)
                assert len(uses) <= 1, seen
            assert len(seen) - len(uses) <= 3, (query, pages, seen)
            page = response.get_json()
            assert page["items"] or pages == 0
            for item in page["items"]:
                assert item["targets"] == {"pending": 1}
            url = page["links"].get("next", "").replace("https://erasure.test", "")
            pages += 1


def test_integration_sees_only_links_to_its_own_requests_without_a_query_per_row(
    client: FlaskClient, org: Org, db_session: Session
) -> None:
    key = create_api_key(db_session, name="integration", role=Role.INTEGRATION)
    other = create_api_key(db_session, name="other", role=Role.INTEGRATION)
    db_session.flush()
    seed(db_session, org, 200, api_key_id=key.record.id, other_key_id=other.record.id)
    owners = dict(db_session.execute(select(ErasureRequest.id, ErasureRequest.api_key_id)).all())
    links = dict(
        db_session.execute(select(ErasureRequest.id, ErasureRequest.duplicate_of_id)).all()
    )
    headers = {"Authorization": f"Bearer {key.secret}"}
    page = client.get("/v1/erasure-requests?limit=200", headers=headers).get_json()
    assert page["items"]
    shown = hidden = 0
    for item in page["items"]:
        linked = links[uuid.UUID(item["id"])]
        if linked is not None and owners[linked] == key.record.id:
            assert item["duplicate_of"] == str(linked)
            shown += 1
        else:
            assert item["duplicate_of"] is None
            hidden += linked is not None
    assert shown and hidden  # both cases were exercised


def test_cursor_walks_ties_on_created_at_exactly_once(
    client: FlaskClient, org: Org, db_session: Session, officer_headers: dict[str, str]
) -> None:
    seed(db_session, org, 90, same_time_every=9)  # ten instants, nine requests at each
    expected = [
        str(i)
        for i in db_session.scalars(
            select(ErasureRequest.id)
            .where(ErasureRequest.org_id == org.id)
            .order_by(ErasureRequest.created_at.desc(), ErasureRequest.id.desc())
        )
    ]
    for query in ("", "status=received,completed,deleting,cancelled", "source=jira"):
        url = f"/v1/erasure-requests?limit=4&{query}"
        seen: list[str] = []
        while url:
            page = client.get(url, headers=officer_headers).get_json()
            seen += [item["id"] for item in page["items"]]
            url = page["links"].get("next", "").replace("https://erasure.test", "")
        wanted = expected
        if query.startswith("source"):
            sources = dict(
                db_session.execute(select(ErasureRequest.id, ErasureRequest.source)).all()
            )
            wanted = [i for i in expected if sources[uuid.UUID(i)].value == "jira"]
        assert seen == wanted, query


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.parametrize(
    ("conditions", "statuses"),
    [
        ((), ()),
        ((), (RequestStatus.RECEIVED,)),
        ((), (RequestStatus.RECEIVED, RequestStatus.COMPLETED)),
        ((ErasureRequest.source == "jira",), ()),
        ((ErasureRequest.reference_id == "T-3",), ()),
    ],
    ids=["none", "status", "statuses", "source", "reference_id"],
)
def test_the_cursor_is_an_index_condition_not_a_filter(
    db_session: Session, org: Org, conditions: tuple[Any, ...], statuses: tuple[Any, ...]
) -> None:
    key = create_api_key(db_session, name="k", role=Role.INTEGRATION)
    db_session.flush()
    seed(db_session, org, 20000, api_key_id=key.record.id, other_key_id=key.record.id)
    db_session.execute(text("ANALYZE erasure_requests"))
    middle = db_session.execute(
        select(ErasureRequest.created_at, ErasureRequest.id)
        .order_by(ErasureRequest.created_at.desc(), ErasureRequest.id.desc())
        .offset(10000)
        .limit(1)
    ).one()
    statement = request_pages.page_select(
        request_pages.PageQuery(
            conditions=conditions, statuses=statuses, after=(middle[0], middle[1]), limit=50
        )
    )
    compiled = statement.compile(dialect=postgresql.psycopg.dialect())
    plan = (
        db_session.connection()
        .exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
        .scalar_one()
    )
    nodes = list(_plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "erasure_requests"]
    keyset = [n for n in scans if "created_at" in n.get("Index Cond", "")]
    assert keyset, json.dumps(nodes, indent=1)
    assert all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in keyset)
    for node in scans:
        assert "created_at" not in node.get("Filter", ""), json.dumps(node, indent=1)
