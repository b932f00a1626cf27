"""Notices in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): an officer
opens a request's notices from its page, makes an acknowledgement and downloads it, extends the
deadline and finds the extension notice made by itself; an admin edits a template, sees a broken
one refused with the draft kept, and the saved one previewed. axe-core finds no violation on any
of these pages. Screenshots go to docs/ with ERASURE_SCREENSHOTS=1, else to a temporary dir."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from erasure.accounts.models import Role, User
from erasure.db import make_sessionmaker
from erasure.notices.models import NoticeTemplate
from erasure.orgs import add_org
from erasure.ui import accounts
from erasure.workflow import Protection
from tests.notices.support import EMAIL, submit
from tests.pipeline.conftest import cleanup_org
from tests.ui.conftest import PASSWORD
from tests.ui.test_browser import (  # noqa: F401  # fixtures: the live console and Chromium
    CHROMIUM,
    DOCS,
    TIMEOUT_MS,
    browser,
    console_url,
    sign_in,
)

playwright_sync = pytest.importorskip("playwright.sync_api")
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
#: Read at import: the autouse fixture that clears ERASURE_* variables runs before each test.
SCREENSHOTS = os.environ.get("ERASURE_SCREENSHOTS") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]


@pytest.fixture
def setting(engine: Engine, protection: Protection) -> Iterator[dict[str, str]]:
    """Committed: an officer, an admin, and a request of a subject who gave an email address.
    Removed afterwards, with any template the test saved (templates are shared by the database)."""
    maker = make_sessionmaker(engine)
    people: dict[str, str] = {}
    with maker() as session:
        org = add_org(
            session, name=f"notices-{uuid.uuid4().hex[:8]}", my_domain_url="https://127.0.0.1:9"
        )
        for role in (Role.OFFICER, Role.ADMIN):
            email = f"notices-{role.value}-{uuid.uuid4().hex[:6]}@example.org"
            accounts.create_user(
                session, email=email, name=f"Notices {role.value}", role=role, password=PASSWORD
            )
            people[role.value] = email
        request = submit(session, protection, org.name)
        session.commit()
        people["request"], org_id = str(request.id), org.id
    yield people
    with maker() as session:
        session.execute(delete(NoticeTemplate))
        session.execute(delete(User).where(User.email.in_([people["officer"], people["admin"]])))
        session.commit()
    cleanup_org(maker, org_id)


def _no_violations(page: object, where: str) -> None:
    results = axe_playwright.Axe().run(page)
    assert results.violations_count == 0, f"{where}: {results.generate_report()}"


def test_officer_and_admin_work_with_notices(
    browser: object,  # noqa: F811  # the fixture imported above
    console_url: str,  # noqa: F811
    setting: dict[str, str],
    tmp_path: Path,
) -> None:
    shots = DOCS if SCREENSHOTS else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    request_id = setting["request"]
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, console_url, setting["officer"])

    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.get_by_role("link", name="Notices to the subject").click()
    page.get_by_role("heading", name="Notices to the subject").wait_for()
    _no_violations(page, "notices (none yet)")
    page.get_by_role("button", name="Make an acknowledgement").click()
    page.locator('tr[data-kind="acknowledgement"][data-delivery="queued"]').wait_for()
    assert EMAIL not in page.content()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the acknowledgement", exact=False).click()
    saved = tmp_path / "acknowledgement.txt"
    download_info.value.save_as(str(saved))
    assert saved.read_text().startswith("Subject: We received your erasure request (PRIV-77)")

    # Extending the deadline makes the extension notice, with the reason, by itself.
    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.get_by_label("Reason for extending the deadline").fill("records in three systems")
    page.get_by_role("button", name="Extend deadline").click()
    page.get_by_role("link", name="Notices to the subject").click()
    page.locator('tr[data-kind="extension"]').wait_for()
    _no_violations(page, "notices")
    page.screenshot(path=str(shots / "console-notices.png"), full_page=True)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the extension notice", exact=False).click()
    extension = tmp_path / "extension.txt"
    download_info.value.save_as(str(extension))
    assert "records in three systems" in extension.read_text()
    assert page.get_by_role("link", name="Notice templates").count() == 0  # admins only
    context.close()

    admin = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    admin.set_default_timeout(TIMEOUT_MS)
    page = admin.new_page()
    sign_in(page, console_url, setting["admin"])
    page.get_by_role("link", name="Notice templates").click()
    page.get_by_role("heading", name="Notice templates", level=1).wait_for()
    _no_violations(page, "notice templates")
    page.get_by_label("Acknowledgement: letter").fill("Dear subject,\n{{ reference }")
    page.get_by_role("button", name="Save the acknowledgement template").click()
    page.locator("#acknowledgement-problem").wait_for()
    assert "{{ reference }" in page.get_by_label("Acknowledgement: letter").input_value()
    _no_violations(page, "notice templates with a problem")
    page.get_by_label("Acknowledgement: letter").fill(
        "Dear subject,\nWe have your request {{ reference }}."
    )
    page.get_by_role("button", name="Save the acknowledgement template").click()
    page.locator("#acknowledgement-preview", has_text="We have your request PRIV-1234.").wait_for()
    assert page.get_by_role("button", name="Back to the default acknowledgement").count() == 1
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "console-notice-templates.png"), full_page=False)
    _no_violations(page, "notice templates, edited")
    admin.close()
