"""The dashboard's charts: figures from aggregate SQL on a clock far from any other test's data,
and the page's SVG with its title, description and data table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    ErasureRequest,
    Org,
    Regulation,
    RequestStatus,
    Source,
)
from erasure.ui import chart_figures
from tests.support.console import SignedIn

#: A Wednesday in a year no other test writes to, so the weeks hold only this test's requests.
NOW = datetime(2090, 3, 15, 12, 30, tzinfo=UTC)


def _request(
    session: Session,
    org: Org,
    *,
    received: datetime,
    status: RequestStatus = RequestStatus.RECEIVED,
    closed: datetime | None = None,
) -> None:
    session.add(
        ErasureRequest(
            org_id=org.id,
            source=Source.UI,
            regulation=Regulation.GDPR,
            received_at=received,
            due_at=received + timedelta(days=30),
            status=status,
            completed_at=closed,
        )
    )


def test_weekly_figures_count_what_each_week_opened_and_closed(
    db_session: Session, org: Org
) -> None:
    this_monday = datetime(2090, 3, 13, tzinfo=UTC)
    last_monday = this_monday - timedelta(weeks=1)
    for hours in (1, 5, 30):
        _request(db_session, org, received=this_monday + timedelta(hours=hours))
    _request(db_session, org, received=NOW + timedelta(hours=1))  # not yet: after the clock
    _request(db_session, org, received=NOW - timedelta(weeks=20))  # before the window
    # Closed last week: one in 10 days, one 10 days late (40), one cancelled (closed, not completed).
    closed_at = last_monday + timedelta(days=2)
    _request(
        db_session,
        org,
        received=closed_at - timedelta(days=10),
        status=RequestStatus.COMPLETED,
        closed=closed_at,
    )
    _request(
        db_session,
        org,
        received=closed_at - timedelta(days=40),
        status=RequestStatus.COMPLETED_NO_DATA,
        closed=closed_at,
    )
    _request(
        db_session,
        org,
        received=closed_at - timedelta(days=3),
        status=RequestStatus.CANCELLED,
        closed=closed_at,
    )
    db_session.flush()

    figures = chart_figures.weekly(db_session, NOW)

    assert figures.weeks[-1] == this_monday.replace(tzinfo=None)
    assert figures.weeks[-2] == last_monday.replace(tzinfo=None)
    assert figures.opened[-1] == 3
    # The closed ones were received 3, 10 and 40 days before last Wednesday, inside the 12
    # weeks; the one of 20 weeks ago and the one after the clock are outside.
    assert sum(figures.opened) == 3 + 3
    assert figures.closed[-2:] == [3, 0]
    assert figures.median_days[-2:] == [25.0, None]
    assert figures.within_deadline[-2:] == [50.0, None]
    assert sum(figures.closed) == 3


def test_quota_chart_counts_calls_that_spent_quota_per_hour(db_session: Session, org: Org) -> None:
    credential = Credential(
        org_id=org.id,
        name="exec-chart",
        client_id="chart-client",
        client_secret_ciphertext=b"x",
        key_id="k1",
    )
    db_session.add(credential)
    db_session.flush()

    def call(at: datetime, status: DeleteCallStatus, http: int | None) -> None:
        db_session.add(
            DeleteCall(
                org_id=org.id,
                credential_id=credential.id,
                route=DeleteRoute.PARTICIPANTS,
                status=status,
                ids_count=10,
                http_status=http,
                sent_at=at,
            )
        )

    call(NOW - timedelta(minutes=70), DeleteCallStatus.ACCEPTED, 200)
    call(NOW - timedelta(minutes=65), DeleteCallStatus.ACCEPTED, 200)
    call(NOW - timedelta(minutes=60), DeleteCallStatus.REJECTED, 429)  # spent nothing
    call(NOW - timedelta(minutes=5), DeleteCallStatus.SENDING, None)  # in flight: counts
    call(NOW - timedelta(hours=30), DeleteCallStatus.ACCEPTED, 200)  # older than 24 hours
    db_session.flush()

    users = {u.credential: u for u in chart_figures.calls_per_hour(db_session, NOW)}
    per_hour = users["exec-chart"].per_hour
    assert len(per_hour) == 24
    assert per_hour[-2:] == [2, 1]  # 11:00 and 12:00 UTC
    assert sum(per_hour) == 3


def test_dashboard_draws_accessible_charts_with_data_tables(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    _request(db_session, org, received=datetime.now(UTC) - timedelta(minutes=5))
    db_session.flush()
    client, _ = signed_in(Role.OFFICER)
    html = client.get("/ui/").get_data(as_text=True)
    for chart_id in ("chart-flow", "chart-time", "chart-deadline"):
        assert re.search(rf'<svg role="img" aria-labelledby="{chart_id}-t {chart_id}-d"', html), (
            chart_id
        )
        assert f'<title id="{chart_id}-t">' in html and f'<desc id="{chart_id}-d">' in html
    flow = html[html.index('id="chart-flow"') : html.index('id="chart-time"')]
    rows = re.findall(r"<tr><th scope=\"row\">[^<]+</th><td>(\d+)</td><td>(\d+)</td></tr>", flow)
    assert len(rows) == chart_figures.WEEKS
    assert int(rows[-1][0]) >= 1  # this week's opened count includes the request above
    assert "<script" not in html and "http://" not in flow and "https://" not in flow
