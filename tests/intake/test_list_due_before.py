"""A deadline filter (`due_before`) on a list ordered by arrival stays flat: the newest requests
are the ones not yet due, so the filter alone made a page read every one of them first. The
page also bounds created_at by the filter's instant less the smallest lead (due_at -
created_at) of any request, which every match satisfies, and Postgres starts the scan there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.core import request_pages
from erasure.core.models import ErasureRequest, Org
from tests.support.list_scale import analyze, seed, statements

START = datetime(2025, 1, 1, tzinfo=UTC)
N = 20_000  # one a minute: about 14 days of requests, each due 30 days after it arrived


def _page(moment: datetime, after: request_pages.Cursor | None = None) -> object:
    return request_pages.page_select(
        request_pages.PageQuery(conditions=request_pages.due_before(moment), after=after, limit=50)
    )


def _brute_force(session: Session, moment: datetime) -> list[object]:
    return list(
        session.scalars(
            select(ErasureRequest.id)
            .where(ErasureRequest.due_at < moment)
            .order_by(*request_pages.NEWEST_FIRST)
        )
    )


def test_due_before_skips_the_requests_not_yet_due_by_index(db_session: Session, org: Org) -> None:
    seed(db_session, org, N, start=START)
    db_session.execute(text("ANALYZE erasure_requests"))
    moment = START + timedelta(days=30 + 7)  # the newer half is not yet due
    nodes = analyze(db_session, _page(moment))
    scans = [
        n
        for n in nodes
        if n.get("Relation Name") == "erasure_requests" and "Index" in n["Node Type"]
    ]
    keyset = [n for n in scans if "created_at" in n.get("Index Cond", "")]
    assert keyset, nodes
    assert all(n.get("Rows Removed by Filter", 0) < 50 for n in keyset), keyset
    page = list(db_session.scalars(_page(moment)))
    assert [r.id for r in page] == _brute_force(db_session, moment)[:50]


def test_a_request_due_before_it_arrived_is_still_listed(db_session: Session, org: Org) -> None:
    # An imported request received long before it was recorded: its lead is negative, which
    # loosens the bound for every page, and it must still appear in order.
    seed(db_session, org, 3000, start=START)
    newest = db_session.scalar(select(ErasureRequest).order_by(*request_pages.NEWEST_FIRST))
    assert newest is not None
    db_session.execute(
        update(ErasureRequest)
        .where(ErasureRequest.id == newest.id)
        .values(due_at=START - timedelta(days=100))
    )
    moment = START + timedelta(days=31)
    expected = _brute_force(db_session, moment)
    assert expected[0] == newest.id
    walked: list[object] = []
    after = None
    while True:
        page = list(db_session.scalars(_page(moment, after)))
        walked.extend(r.id for r in page)
        if len(page) < 50:
            break
        after = request_pages.cursor_of(page[-1], "created")
    assert walked == expected


def test_the_api_due_before_page_uses_the_bound(
    client: FlaskClient, db_session: Session, org: Org, engine: Engine
) -> None:
    key = create_api_key(db_session, name="k", role=Role.OFFICER)
    db_session.flush()
    seed(db_session, org, 500, start=datetime.now(UTC) - timedelta(days=20))
    with statements(engine) as seen:
        response = client.get(
            "/v1/erasure-requests?due_before=" + datetime.now(UTC).date().isoformat(),
            headers={"Authorization": f"Bearer {key.secret}"},
        )
    assert response.status_code == 200
    pages = [s for s in seen if "erasure_requests.due_at <" in s]
    assert pages and all(
        "min(erasure_requests.due_at - erasure_requests.created_at)" in s for s in pages
    )


def test_open_at_risk_counts_read_only_the_status_index(db_session: Session) -> None:
    # The console counts at-risk requests (open, and at risk or overdue) up to 10,001: with the
    # two columns of that condition in the status index the count is an index-only scan; without
    # them Postgres read the table (2,127 buffers at 1M rows against 114).
    definition = db_session.scalar(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
        {"name": "ix_erasure_requests_status_created_at_id"},
    )
    assert definition is not None
    assert definition.endswith("(status, created_at, id) INCLUDE (is_at_risk, due_at)")
