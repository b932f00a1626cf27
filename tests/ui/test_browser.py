"""The console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): an officer
signs in, submits a request, watches it reach `completed` against the Salesforce sandbox, downloads
its certificate and verifies it offline; an auditor sees neither the officer's pages nor actions.
Takes the screenshots the README shows: into docs/ with ERASURE_SCREENSHOTS=1 (to refresh
them), else into the test's temporary directory, so a test run leaves the tree clean.

The pipeline runs in this process, step by step (resolve, quota-scheduled delete, confirm against
the sandbox over HTTPS), exactly as tests/pipeline drives it; the Celery worker path is covered
by tests/pipeline/test_worker.py.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from erasure.accounts.models import Role, User
from erasure.audit import store
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import RequestStatus
from erasure.db import make_sessionmaker
from erasure.ui import accounts
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


@pytest.fixture
def people(engine: Engine) -> Iterator[dict[Role, str]]:
    """Committed users (the live server uses its own connections); removed afterwards."""
    maker = make_sessionmaker(engine)
    emails = {}
    with maker() as session:
        for role in (Role.OFFICER, Role.AUDITOR):
            email = f"browser-{role.value}-{uuid.uuid4().hex[:6]}@example.org"
            accounts.create_user(
                session, email=email, name=f"Browser {role.value}", role=role, password=PASSWORD
            )
            emails[role] = email
        session.commit()
    yield emails
    with maker() as session:
        session.execute(delete(User).where(User.email.in_(emails.values())))
        session.commit()


def test_officer_submits_watches_completion_and_verifies_certificate(
    browser: object,  # noqa: F811  # the fixture imported above
    console_url: str,  # noqa: F811
    people: dict[Role, str],
    world: World,  # noqa: F811  # the fixture imported above
    engine: Engine,
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    shots = DOCS if SCREENSHOTS_TO_DOCS else tmp_path / "screenshots"
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, console_url, people[Role.OFFICER])

    page.get_by_role("link", name="New request").click()
    page.get_by_label("Phone (E.164, e.g. +14155550100)").fill("+14155550001")
    page.get_by_label("Salesforce org").select_option(world.org_name)
    page.get_by_label("Ticket system (e.g. jira)").fill("jira")
    page.get_by_label("Ticket id").fill("PRIV-BROWSER-1")
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(re.compile(r".*/ui/requests/[0-9a-f-]{36}$"))
    request_id = uuid.UUID(page.url.rsplit("/", 1)[-1])
    assert "+14155550001" not in page.content()  # the page shows pseudonyms, never the phone

    # The pipeline carries it out against the sandbox; then the sequencer checkpoints the log.
    world.wait_for([request_id], (RequestStatus.COMPLETED,), timeout=60)
    with make_sessionmaker(engine)() as session:
        while store.sequence(session):
            pass
        store.sign_checkpoint(session, signing_key, origin="erasure.test/audit")
        session.commit()

    page.reload()
    page.locator('#status[data-status="completed"]').wait_for()
    assert page.locator("td", has_text="deleted").count() >= 1
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "console-request.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#certificate").click()
    certificate = tmp_path / "certificate.json"
    download_info.value.save_as(str(certificate))
    report = verify_certificate(certificate.read_bytes(), signing_key.verifier())
    assert report.ok, report.to_json()

    page.get_by_role("link", name="Requests", exact=True).click()
    page.get_by_role("heading", name="Requests").wait_for()
    page.screenshot(path=str(shots / "console-list.png"), full_page=True)
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Requests by state").wait_for()
    page.screenshot(path=str(shots / "console-dashboard.png"), full_page=True)

    # Phone width: the same pages stay usable (no horizontal page scroll beyond tables).
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.locator('#status[data-status="completed"]').wait_for()
    context.close()

    # An auditor sees the request, but neither the officer's pages nor the actions.
    auditor = browser.new_context()  # type: ignore[attr-defined]
    auditor.set_default_timeout(TIMEOUT_MS)
    page = auditor.new_page()
    sign_in(page, console_url, people[Role.AUDITOR])
    assert page.get_by_role("link", name="New request").count() == 0
    assert page.get_by_role("link", name="Audit").count() == 1
    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.locator('#status[data-status="completed"]').wait_for()
    assert page.get_by_role("button", name="Cancel request").count() == 0
    response = page.goto(f"{console_url}/ui/requests/new")
    assert response is not None and response.status == 403
    response = page.goto(f"{console_url}/ui/settings")
    assert response is not None and response.status == 403
    auditor.close()
