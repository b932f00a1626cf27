"""Console v2 in headless Chromium: an officer enters a letter that came ten days ago, loses no
notes to a typo, uploads a CSV through its check, works the request list (search, sort, select,
extend, cancel with confirmation, phone width), is warned before extending an overdue request and
sees an extended request leave the dashboard's alerts; an admin manages a user and a key and sees
when a key was last used; an unknown path is the console's 404. axe-core finds no violation on
any of these pages.

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
from sqlalchemy import Engine, delete, select

from erasure import deadlines
from erasure.accounts.models import ApiKey, Role, User
from erasure.core.models import ErasureRequest, Regulation, RequestStatus
from erasure.db import make_sessionmaker
from erasure.pipeline.states import raise_alert
from erasure.ui import accounts
from tests.support.browser import (  # noqa: F401  # fixtures: a browser, the app over HTTP
    CHROMIUM,
    TIMEOUT_MS,
    browser,
    console_url,
)
from tests.support.console import PASSWORD
from tests.support.pipeline import (  # noqa: F401  # fixtures: a committed sandbox org
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
def staff(engine: Engine) -> Iterator[dict[str, User]]:
    """Committed users (the live server uses its own connections) and their keys, removed after."""
    maker = make_sessionmaker(engine)
    made: dict[str, User] = {}
    with maker() as session:
        for label, role in (
            ("officer", Role.OFFICER),
            ("admin", Role.ADMIN),
            ("ana", Role.AUDITOR),
        ):
            made[label] = accounts.create_user(
                session,
                email=f"walk-{label}-{RUN}@example.org",
                name=f"Walk {label}",
                role=role,
                password=PASSWORD,
            )
        session.commit()
    yield made
    with maker() as session:
        session.execute(delete(ApiKey).where(ApiKey.name.like(f"walk-{RUN}%")))
        session.execute(delete(User).where(User.email.like(f"walk-%-{RUN}@example.org")))
        session.commit()


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/ui/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def accessible(page: Any, where: str) -> None:
    found = axe.violations(page)
    assert found == [], (where, found)


def new_context(chromium: Any, **options: Any) -> Any:
    context = chromium.new_context(
        viewport={"width": 1200, "height": 900}, bypass_csp=True, **options
    )  # bypass_csp: only so axe-core can be injected
    context.set_default_timeout(TIMEOUT_MS)
    return context


def submit_form(
    page: Any, url: str, org: str, *, phone: str, ticket: str, days_ago: int
) -> uuid.UUID:
    page.goto(f"{url}/ui/requests/new")
    page.get_by_label("Phone (E.164, e.g. +14155550100)").fill(phone)
    page.get_by_label("Salesforce org").select_option(org)
    page.get_by_label("Ticket system (e.g. jira)").fill("jira")
    page.get_by_label("Ticket id").fill(ticket)
    received = (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()
    page.get_by_label(re.compile("^Received on")).fill(received)
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(re.compile(r".*/ui/requests/[0-9a-f-]{36}$"))
    return uuid.UUID(page.url.rsplit("/", 1)[-1])


def test_officer_and_admin_walk_console_v2(
    browser: Any,  # noqa: F811  # the fixture imported above
    console_url: str,  # noqa: F811
    staff: dict[str, User],
    world: World,  # noqa: F811
    engine: Engine,
    tmp_path: Path,
) -> None:
    shots = DOCS if SCREENSHOTS_TO_DOCS else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    maker = make_sessionmaker(engine)
    url = console_url
    context = new_context(browser, accept_downloads=True)
    page = context.new_page()
    sign_in(page, url, staff["officer"].email)

    # A typo keeps the notes and the received-on date; the identifier is not refilled.
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).date()
    page.get_by_role("link", name="New request").click()
    page.get_by_label("Phone (E.164, e.g. +14155550100)").fill("415-typo")
    page.get_by_label("Salesforce org").select_option(world.org_name)
    page.get_by_label(re.compile("^Received on")).fill(ten_days_ago.isoformat())
    page.get_by_label("Notes (stored encrypted)").fill("letter of 10 days ago, scanned")
    page.get_by_role("button", name="Submit request").click()
    page.get_by_role("alert").wait_for()
    assert page.get_by_label("Notes (stored encrypted)").input_value() == (
        "letter of 10 days ago, scanned"
    )
    assert page.get_by_label(re.compile("^Received on")).input_value() == ten_days_ago.isoformat()
    assert page.get_by_label("Phone (E.164, e.g. +14155550100)").input_value() == ""
    accessible(page, "new request with errors")
    page.screenshot(path=str(shots / "console-new-request.png"), full_page=True)
    page.get_by_label("Phone (E.164, e.g. +14155550100)").fill("+14155550301")
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(re.compile(r".*/ui/requests/[0-9a-f-]{36}$"))
    first = uuid.UUID(page.url.rsplit("/", 1)[-1])
    received = datetime.combine(ten_days_ago, datetime.min.time(), tzinfo=UTC)
    due = deadlines.due_at(Regulation.GDPR, received)
    assert page.locator("dd", has_text=due.strftime("%Y-%m-%d")).count() >= 1
    accessible(page, "request page")

    # Bulk upload: the check, then the confirmed submission inside the console's page.
    csv_path = tmp_path / "letters.csv"
    lines = ["phone,regulation,org,reference_system,reference_id"]
    lines += [f"+141555504{n:02d},gdpr,{world.org_name},jira,W{RUN}-{n}" for n in range(18)]
    lines += [
        f"bad-phone,gdpr,{world.org_name},jira,W{RUN}-x1",
        f"+14155550499,nope,,jira,W{RUN}-x2",
    ]
    csv_path.write_text("\n".join(lines) + "\n")
    page.get_by_role("link", name="Bulk upload").click()
    page.get_by_label("CSV file").set_input_files(str(csv_path))
    page.get_by_role("button", name="Upload and check").click()
    page.locator("#bulk-preview").wait_for()
    assert (
        "18 will be submitted, 2 rows have problems" in page.locator("#bulk-preview").inner_text()
    )
    accessible(page, "bulk check")
    page.screenshot(path=str(shots / "console-bulk-check.png"), full_page=True)
    page.get_by_role("button", name="Submit 18 request(s)").click()
    page.locator("#bulk-result").wait_for()
    assert page.get_by_role("navigation", name="Main").count() == 1  # the header stays
    assert page.locator("ul.created a").count() == 18
    accessible(page, "bulk result")
    # Then its progress: the 18 requests by state, each linked, inside the console's page.
    page.get_by_role("link", name="Follow these requests' progress").click()
    page.locator("#bulk-progress").wait_for()
    counts = page.locator("#bulk-progress td").all_inner_texts()
    assert sum(int(c) for c in counts) == 18
    assert page.locator('a[href^="/ui/requests/"][class="mono"]').count() == 18
    assert page.get_by_role("navigation", name="Main").count() == 1
    accessible(page, "bulk progress")
    page.screenshot(path=str(shots / "console-bulk-progress.png"), full_page=True)
    page.get_by_role("link", name="Upload another file").click()
    page.locator("#recent-uploads a").first.wait_for()  # the upload, to come back to
    accessible(page, "bulk upload with recent uploads")

    # The list: search, sort, count, regulation, select and act, previous/next.
    page.get_by_role("link", name="Requests", exact=True).click()
    page.get_by_label("Ticket id or request id").fill(f"W{RUN}-3")
    page.get_by_role("button", name="Search").click()
    page.locator("#total", has_text="1 request(s) match").wait_for()
    assert page.locator('td[data-label="Regulation"]', has_text="GDPR").count() == 1
    page.goto(f"{url}/ui/requests?source=bulk")
    page.get_by_role("link", name=re.compile("^Due")).click()
    page.locator('th[aria-sort="ascending"]', has_text="Due").wait_for()
    accessible(page, "request list")
    boxes = page.locator('input[name="ids"]')
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_label("Action").select_option("extend")
    page.get_by_label("Reason (for cancel or extend)").fill("vendor backlog, subject told")
    page.screenshot(path=str(shots / "console-list-actions.png"), full_page=True)
    page.get_by_role("button", name="Apply to selected").click()
    page.locator("#confirm-message").wait_for()
    accessible(page, "confirmation")
    page.screenshot(path=str(shots / "console-confirm.png"), full_page=True)
    page.get_by_role("button", name="Yes, extend 2 request(s)").click()
    page.locator(".flash", has_text="2 request(s) extended.").wait_for()

    # Phone width: the list is cards, the page does not scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    accessible(page, "request list at phone width")
    page.screenshot(path=str(shots / "console-list-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})

    # An overdue request: a warning on the page and a confirmation before extending.
    overdue = submit_form(
        page, url, world.org_name, phone="+14155550302", ticket=f"W{RUN}-late", days_ago=40
    )
    page.locator("#extend-overdue").wait_for()
    with maker() as session, session.begin():
        raise_alert(
            session,
            kind="deadline_at_risk",
            message="predicted to finish too close to (or after) its deadline",
            org_id=world.org_id,
            request_id=overdue,
        )
        stored = session.get(ErasureRequest, overdue)
        assert stored is not None
        stored.is_at_risk = True
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name="request", exact=True).first.wait_for()
    assert page.locator(f'a[href="/ui/requests/{overdue}"]').count() >= 1
    page.goto(f"{url}/ui/requests/{overdue}")
    page.get_by_label("Reason for extending the deadline").fill("complex case")
    page.get_by_role("button", name="Extend deadline").click()
    page.get_by_role("heading", name="Extend an overdue request?").wait_for()
    page.get_by_role("button", name="Yes, extend the deadline").click()
    page.locator(".flash", has_text="Deadline extended.").wait_for()
    assert page.locator("#extension-reasons", has_text="complex case").count() == 1
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Requests by state").wait_for()
    assert page.locator(f'#alerts-h ~ ul a[href="/ui/requests/{overdue}"]').count() == 0

    # Cancel is confirmed; a cancelled request predicts nothing and shows its reason.
    page.goto(f"{url}/ui/requests/{first}")
    page.get_by_label("Reason for cancelling").fill("the subject withdrew")
    page.get_by_role("button", name="Cancel request").click()
    page.get_by_role("button", name="Yes, cancel the request").click()
    page.locator('#status[data-status="cancelled"]').wait_for()
    assert page.locator("#predicted").count() == 0
    assert page.locator("#cancel-reason", has_text="the subject withdrew").count() == 1
    accessible(page, "cancelled request")
    page.screenshot(path=str(shots / "console-request-cancelled.png"), full_page=True)

    # An unknown path is the console's 404, with its header.
    response = page.goto(f"{url}/ui/no/such/page")
    assert response is not None and response.status == 404
    assert page.get_by_role("navigation", name="Main").count() == 1
    accessible(page, "404")
    context.close()

    # The admin: a user's role, a password reset, a disable; a key revoked; last use shown.
    admin = new_context(browser)
    page = admin.new_page()
    sign_in(page, url, staff["admin"].email)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name=staff["ana"].email).click()
    accessible(page, "user page")
    page.get_by_label("New role").select_option("approver")
    page.get_by_role("button", name="Change role").click()
    page.locator("#user-role-now", has_text="approver").wait_for()
    page.get_by_role("button", name="Reset password").click()
    new_password = page.get_by_label("New password").input_value()
    assert len(new_password) >= 12
    page.screenshot(path=str(shots / "console-user.png"), full_page=True)
    page.get_by_role("button", name="Disable user").click()
    page.get_by_role("heading", name="Disable this user?").wait_for()
    page.get_by_role("button", name="Yes, disable the user").click()
    page.locator(".flash", has_text="disabled").wait_for()
    with maker() as session:
        ana = session.get(User, staff["ana"].id)
        assert ana is not None and ana.role is Role.APPROVER and not ana.is_active
        assert accounts.authenticate(session, ana.email, new_password).user is None  # disabled

    page.get_by_label("Key name (who uses it)").fill(f"walk-{RUN}-jira")
    page.get_by_label("Role", exact=True).first.select_option("officer")
    page.get_by_role("button", name="Create API key").click()
    key = page.locator("#new-key").inner_text().strip()
    answer = admin.request.get(
        f"{url}/v1/erasure-requests?limit=1", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status == 200
    page.goto(f"{url}/ui/settings")
    row = page.locator("tr", has_text=f"walk-{RUN}-jira")
    with maker() as session:
        record = session.scalar(select(ApiKey).where(ApiKey.name == f"walk-{RUN}-jira"))
        assert record is not None and record.last_used_at is not None
    assert row.locator("td", has_text=record.last_used_at.strftime("%Y-%m-%d %H:%M")).count() == 1
    accessible(page, "settings")
    row.get_by_role("button", name=re.compile("^Revoke key")).click()
    page.get_by_role("heading", name="Revoke this API key?").wait_for()
    page.get_by_role("button", name="Yes, revoke the key").click()
    page.locator(".flash", has_text="revoked").wait_for()
    with maker() as session:
        record = session.scalar(select(ApiKey).where(ApiKey.name == f"walk-{RUN}-jira"))
        assert record is not None and record.revoked_at is not None
        statuses = set(
            session.scalars(
                select(ErasureRequest.status).where(ErasureRequest.org_id == world.org_id)
            )
        )
    assert RequestStatus.CANCELLED in statuses
    admin.close()
