"""Lists stay flat as the table grows: a page is at most three SQL statements whatever the filter
and depth (API, console list, CSV export), the cursor is an index condition in Postgres' plan (not
a filter), and the row-comparison cursor walks ties on created_at exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.core import request_pages
from erasure.core.models import ErasureRequest, Org, RequestStatus
from tests.support.list_scale import seed, statements

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
