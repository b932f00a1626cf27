"""Legal holds in headless Chromium: an approver places a hold on a subject from the Legal holds
page, the subject's request (carried by the pipeline against the sandbox) stops before deletion
and its page says why, and the approver's override lets it complete. Server-rendered pages, driven
by their labels and roles as a person would use them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from erasure.accounts.models import Role, User
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
from tests.ui import axe

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]

PHONE = "+14155550002"  # a seeded SMS user of the sandbox
MATTER = "Matter 2026-77: keep until the claim is settled"


@pytest.fixture
def approver(engine: Engine) -> Iterator[str]:
    maker = make_sessionmaker(engine)
    email = f"browser-approver-{uuid.uuid4().hex[:6]}@example.org"
    with maker() as session:
        accounts.create_user(
            session, email=email, name="Browser approver", role=Role.APPROVER, password=PASSWORD
        )
        session.commit()
    yield email
    with maker() as session:
        session.execute(delete(User).where(User.email == email))
        session.commit()


def test_an_approver_holds_a_subject_and_overrides_the_hold(
    browser: object,  # noqa: F811
    console_url: str,  # noqa: F811
    approver: str,
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1100, "height": 900},
        bypass_csp=True,  # bypass_csp: for axe-core
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, console_url, approver)

    page.get_by_role("link", name="Legal holds").click()
    page.get_by_role("heading", name="Legal holds").wait_for()
    page.get_by_label("One subject").check()
    page.get_by_label("Identifier kind (for a subject)").select_option("phone")
    page.get_by_label("Identifier (for a subject)").fill(PHONE)
    if page.get_by_label("Org", exact=True).count():
        page.get_by_label("Org", exact=True).select_option(world.org_name)
    page.get_by_label("Matter (why)").fill(MATTER)
    ends = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    page.get_by_label("Ends on").fill(ends)
    page.get_by_role("button", name="Place hold").click()
    page.get_by_text("Legal hold placed.").wait_for()
    assert MATTER in page.content()
    assert PHONE not in page.content() and PHONE[1:] not in page.content()

    request_id = world.submit(PHONE)
    world.wait_for([request_id], (RequestStatus.ON_HOLD,), timeout=60)
    page.goto(f"{console_url}/ui/requests/{request_id}")
    page.locator('#status[data-status="on_hold"]').wait_for()
    page.get_by_text("Stopped before deletion").wait_for()
    assert MATTER in page.locator("#legal-hold").inner_text()
    # What it waits for, in words: the hold, until when, and who may release or override it.
    waiting = page.locator('#why-stuck li[data-cause="legal_hold"]').inner_text()
    listed = re.search(
        r"ends (\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC)", page.locator("#legal-hold").inner_text()
    )
    assert listed and f"until {listed.group(1)} at the latest" in waiting
    assert waiting.startswith("On legal hold: 1 hold(s)") and "override" in waiting
    assert axe.violations(page) == []
    page.screenshot(path=str(tmp_path / "console-held.png"), full_page=True)

    page.get_by_label("Reason for overriding the hold").fill("Counsel: outside the matter")
    page.get_by_role("button", name="Override hold").click()
    page.get_by_text("Hold overridden").wait_for()
    world.wait_for([request_id], (RequestStatus.COMPLETED,), timeout=60)
    page.reload()
    page.locator('#status[data-status="completed"]').wait_for()
    assert re.search(r"\(override\)", page.locator("#legal-hold").inner_text())
    context.close()
