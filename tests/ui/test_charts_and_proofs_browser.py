"""The dashboard's charts and the auditor's worded results in headless Chromium: a request carried
out against the Salesforce sandbox shows in the charts (its week, its execution user's delete
calls), the charts' data tables say what the database says, the printable certificate hides the
site's navigation in print, a request whose prediction slipped says why, and an uploaded certificate's result names what it proves. axe-core
finds no violation on these pages.

Screenshots go into docs/ with ERASURE_SCREENSHOTS=1, else into the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from erasure.accounts.models import Role, User
from erasure.audit import leaves, store
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import (
    ErasureRequest,
    Regulation,
    RequestStatus,
    Source,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.db import make_sessionmaker
from erasure.ui import accounts, chart_figures
from tests.support.browser import (  # noqa: F401  # fixtures: the live console, Chromium
    CHROMIUM,
    TIMEOUT_MS,
    browser,
    console_url,
    sign_in,
)
from tests.support.console import PASSWORD
from tests.support.pipeline import (  # noqa: F401  # fixtures: a sandbox org and a pipeline
    World,
    make_world,
    sandbox,
    world,
)
from tests.ui import axe

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Read when the module is imported: the test fixtures clear ERASURE_* variables before each test.
SCREENSHOTS_TO_DOCS = os.environ.get("ERASURE_SCREENSHOTS") == "1"
playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]

RUN = secrets.token_hex(3)


@pytest.fixture
def people(engine: Engine) -> Iterator[dict[Role, str]]:
    """Committed users (the live server uses its own connections); removed afterwards."""
    maker = make_sessionmaker(engine)
    emails = {
        role: f"charts-{role.value}-{RUN}@example.org" for role in (Role.OFFICER, Role.AUDITOR)
    }
    with maker() as session:
        for role, email in emails.items():
            accounts.create_user(
                session, email=email, name=f"Charts {role.value}", role=role, password=PASSWORD
            )
        session.commit()
    yield emails
    with maker() as session:
        session.execute(delete(User).where(User.email.in_(emails.values())))
        session.commit()


def accessible(page: Any, where: str) -> None:
    found = axe.violations(page)
    assert found == [], (where, found)


def table_of(page: Any, chart_id: str) -> list[list[str]]:
    """The chart's data table, row by row (category first), opened as a reader would."""
    page.locator(f"#{chart_id} summary").click()
    rows = page.locator(f"#{chart_id} tbody tr")
    return [
        [cell.strip() for cell in rows.nth(n).locator("th, td").all_inner_texts()]
        for n in range(rows.count())
    ]


def seed_closed_weeks(org_world: World, now: datetime) -> None:
    """Requests completed 3 and 4 weeks ago (one late), in the sandbox org (removed with it)."""
    with org_world.session() as session, session.begin():
        for weeks, days_to_close in ((3, 12), (3, 35), (4, 20)):
            closed = now - timedelta(weeks=weeks)
            received = closed - timedelta(days=days_to_close)
            session.add(
                ErasureRequest(
                    org_id=org_world.org_id,
                    source=Source.UI,
                    regulation=Regulation.GDPR,
                    received_at=received,
                    due_at=received + timedelta(days=30),
                    status=RequestStatus.COMPLETED,
                    completed_at=closed,
                )
            )


def seed_slipping(org_world: World, now: datetime) -> uuid.UUID:
    """An open request whose record waits on an open Messaging session, predicted later than
    when it was first flagged at risk."""
    with org_world.session() as session, session.begin():
        request = ErasureRequest(
            org_id=org_world.org_id,
            source=Source.UI,
            regulation=Regulation.GDPR,
            received_at=now - timedelta(days=20),
            due_at=now + timedelta(days=10),
            status=RequestStatus.DELETING,
            predicted_completion_at=now + timedelta(days=12),
            is_at_risk=True,
        )
        session.add(request)
        session.flush()
        session.add(
            Target(
                request_id=request.id,
                org_id=org_world.org_id,
                kind=TargetKind.MESSAGING_END_USER,
                salesforce_id="0PA000000000077AAA",
                status=TargetStatus.BLOCKED_OPEN_SESSION,
                due_at=request.due_at,
            )
        )
        leaves.append(
            session,
            kind="request.at_risk",
            request_id=request.id,
            at=now - timedelta(days=2),
            data={
                "predicted_completion_at": leaves.timestamp(now + timedelta(days=9)),
                "due_at": leaves.timestamp(request.due_at),
            },
        )
        return request.id


def test_charts_and_worded_proofs_in_the_browser(
    browser: Any,  # noqa: F811  # the fixture imported above
    console_url: str,  # noqa: F811
    people: dict[Role, str],
    world: World,  # noqa: F811
    engine: Engine,
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    shots = DOCS if SCREENSHOTS_TO_DOCS else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    maker = make_sessionmaker(engine)
    request_id = world.submit("+14155550021")  # a demo end user of the sandbox
    world.wait_for([request_id], (RequestStatus.COMPLETED,), timeout=60)
    now = datetime.now(UTC)
    with maker() as session:
        before = chart_figures.weekly(session, now)
    seed_closed_weeks(world, now)
    slipping = seed_slipping(world, now)
    with maker() as session:
        while store.sequence(session):
            pass
        store.sign_checkpoint(session, signing_key, origin="erasure.test/audit")
        session.commit()

    context = browser.new_context(
        viewport={"width": 1200, "height": 900}, bypass_csp=True, accept_downloads=True
    )  # bypass_csp: only so axe-core can be injected
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, console_url, people[Role.OFFICER])

    # The dashboard: each chart is an image named by its title, with its numbers in a table.
    for title in (
        "Requests opened and closed per week",
        "Median time to close, in days",
        "Share completed within the legal deadline",
    ):
        page.get_by_role("img", name=title).wait_for()
    page.screenshot(path=str(shots / "console-dashboard-charts.png"), full_page=True)
    flow = table_of(page, "chart-flow")
    assert len(flow) == chart_figures.WEEKS
    for weeks_ago, added in ((3, 2), (4, 1)):
        row = flow[-1 - weeks_ago]
        assert int(row[2]) == before.closed[-1 - weeks_ago] + added, (weeks_ago, row)
    assert int(flow[-1][1]) >= 1 and int(flow[-1][2]) >= 1  # this week: the sandbox request
    deadline = table_of(page, "chart-deadline")
    if before.closed[-4] == 0:  # nothing else closed that week: exactly one of two was late
        assert deadline[-4][1] == "50%"
        assert table_of(page, "chart-time")[-4][1] == "23.5 days"
    quota = page.locator("figure.chart", has_text=f"({world.org_name})")
    quota.get_by_role("img").wait_for()
    chart_id = quota.get_attribute("id")
    assert chart_id is not None
    calls = table_of(page, chart_id)
    with maker() as session:
        expected = next(
            u for u in chart_figures.calls_per_hour(session, now) if u.org == world.org_name
        )
    assert sum(int(row[1]) for row in calls) == sum(expected.per_hour) >= 1
    assert len(calls) == 24
    accessible(page, "dashboard with charts and their tables open")

    # A request whose prediction slipped says why.
    page.goto(f"{console_url}/ui/requests/{slipping}")
    why = page.locator("#why-predicted").inner_text()
    assert "3 day(s) later" in why
    assert "wait for an open Messaging session to end" in why
    accessible(page, "request page with the prediction's reasons")
    page.screenshot(path=str(shots / "console-request-why.png"), full_page=True)

    # An auditor prints the certificate and has the JSON's proof stated in words.
    context.clear_cookies()
    sign_in(page, console_url, people[Role.AUDITOR])
    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.get_by_role("link", name="Printable certificate").click()
    page.get_by_role("heading", name="Certificate of erasure").wait_for()
    proven = page.locator("#proven").inner_text()
    assert f"erasure request {request_id}" in proven
    assert re.search(
        r"\d+ of its \d+ Salesforce record\(s\) were deleted and confirmed absent", proven
    )
    accessible(page, "printable certificate")
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="Main").is_visible()
    assert not page.get_by_role("link", name="Download the signed JSON").is_visible()
    page.screenshot(path=str(shots / "console-certificate-print.png"), full_page=True)
    page.emulate_media(media="screen")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the signed JSON").click()
    certificate = tmp_path / "certificate.json"
    download_info.value.save_as(str(certificate))

    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Certificate of erasure (JSON)").set_input_files(str(certificate))
    page.get_by_role("button", name="Verify the certificate").click()
    page.locator("#verify-result", has_text="Verified: every check passed.").wait_for()
    said = page.locator("#proven li").all_inner_texts()
    assert said[0] == "The certificate is signed by this log's key."
    assert any("extends the certificate's checkpoint" in line for line in said)
    assert not any("exit code" in line for line in said)
    accessible(page, "audit result")
    page.screenshot(path=str(shots / "console-audit-result.png"), full_page=True)
    assert errors == []
    context.close()
