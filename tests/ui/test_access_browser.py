"""An access request in headless Chromium: an officer opens one from the new-request form, the
worker's retrieval reads the subject's conversations from the sandbox, and the request's page then
offers the export through its expiring links (the downloaded JSON is the one audited) and the
certificate of disclosure; both states of the page pass axe-core."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from erasure.access import retrieve
from erasure.access.models import AccessRequest, AccessStatus
from erasure.accounts.models import Role, User
from erasure.db import make_sessionmaker
from erasure.salesforce.sandbox.seed import demo_phone
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
from tests.ui import axe

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def officer(engine: Engine) -> Iterator[str]:
    maker = make_sessionmaker(engine)
    email = f"browser-officer-{uuid.uuid4().hex[:6]}@example.org"
    with maker() as session:
        accounts.create_user(
            session, email=email, name="Browser officer", role=Role.OFFICER, password=PASSWORD
        )
        session.commit()
    yield email
    with maker() as session:
        session.execute(delete(User).where(User.email == email))
        session.commit()


def test_an_officer_opens_an_access_request_and_downloads_its_export(
    browser: object,  # noqa: F811
    console_url: str,  # noqa: F811
    officer: str,
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1100, "height": 900}, bypass_csp=True, accept_downloads=True
    )  # bypass_csp: only so axe-core can be injected
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, console_url, officer)

    phone = demo_phone(1)
    page.get_by_role("link", name="New request").click()
    page.get_by_label("The subject asks for").select_option("access")
    page.get_by_label("Phone (E.164, e.g. +14155550100)").fill(phone)
    page.get_by_label("Salesforce org").select_option(world.org_name)
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(re.compile(r".*/ui/access-requests/[0-9a-f-]{36}$"))
    access_id = uuid.UUID(page.url.rsplit("/", 1)[-1])
    page.locator('#status[data-status="received"]').wait_for()
    assert phone not in page.content() and phone[1:] not in page.content()
    assert axe.violations(page) == [], "access request received"

    retrieve.run(world.ctx, retrieve.AccessTunables())
    with world.session() as session:
        access = session.get_one(AccessRequest, access_id)
        assert access.status is AccessStatus.READY, access.outcome
        expected_sha256 = access.export_sha256
    page.reload()
    page.locator('#status[data-status="ready"]').wait_for()
    assert page.locator("#export-sha256").inner_text() == expected_sha256
    assert page.get_by_role("link", name="Download the certificate of disclosure").count() == 1
    assert axe.violations(page) == [], "access request ready"
    with page.expect_download() as download_info:
        page.get_by_role("link", name="JSON").click()
    saved = tmp_path / "export.json"
    download_info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == expected_sha256
    page.screenshot(path=str(tmp_path / "console-access-ready.png"), full_page=True)
    context.close()
