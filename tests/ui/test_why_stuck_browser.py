"""Why a request is stuck, in headless Chromium, on requests the pipeline carried against the
sandbox: one waits on an open Messaging session (and goes once it ends), one failed for good
(Salesforce's reason, retry as the next step), one whose look-up was parked (its Retry restarts
it and it completes). axe-core finds no violation on these pages.

Screenshots go into docs/ with ERASURE_SCREENSHOTS=1, else into the test's temporary directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from erasure.accounts.models import Role, User
from erasure.core.models import RequestStatus
from erasure.db import make_sessionmaker
from erasure.outbox import messages as outbox
from erasure.pipeline.models import Alert
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

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Read at import: the test fixtures clear ERASURE_* variables before each test.
SCREENSHOTS_TO_DOCS = os.environ.get("ERASURE_SCREENSHOTS") == "1"
OPEN_SESSION = "+14155550006"  # the sandbox's end user in an active Messaging session
BLOCKING_CHILD = "+14155550009"  # the sandbox's end user whose delete fails for good
PLAIN = "+14155550002"  # a seeded SMS user that deletes cleanly


@pytest.fixture
def officer(engine: Engine) -> Iterator[str]:
    maker = make_sessionmaker(engine)
    email = f"browser-stuck-{uuid.uuid4().hex[:6]}@example.org"
    with maker() as session:
        accounts.create_user(
            session, email=email, name="Stuck officer", role=Role.OFFICER, password=PASSWORD
        )
        session.commit()
    yield email
    with maker() as session:
        session.execute(delete(User).where(User.email == email))
        session.commit()


def _cause(page: Any, kind: str) -> str:
    item = page.locator(f'#why-stuck li[data-cause="{kind}"]')
    item.first.wait_for()
    text: str = item.first.inner_text()
    return text


def test_request_pages_say_why_a_request_is_stuck_and_what_to_do(
    browser: Any,  # noqa: F811
    console_url: str,  # noqa: F811
    officer: str,
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    shots = DOCS if SCREENSHOTS_TO_DOCS else tmp_path
    blocked = world.submit(OPEN_SESSION)
    failed = world.submit(BLOCKING_CHILD)
    world.wait_for([failed], (RequestStatus.FAILED,), timeout=60)
    world.wait_for([blocked], (RequestStatus.DELETING,), timeout=60)

    context = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, console_url, officer)

    # An open Messaging session: the cause, 412, and that nothing is needed until it ends.
    page.goto(f"{console_url}/ui/requests/{blocked}")
    said = _cause(page, "open_session")
    assert "open Messaging session" in said and "412" in said
    assert "Next step: Nothing: erasure checks the session again" in said
    assert axe.violations(page) == []
    page.screenshot(path=str(shots / "console-request-stuck.png"), full_page=True)

    # A permanent failure: Salesforce's reason, and Retry failed records as the next step.
    page.goto(f"{console_url}/ui/requests/{failed}")
    said = _cause(page, "permanent")
    assert "failed and will not be tried again by themselves" in said
    assert "Retry failed records" in said
    assert page.get_by_role("button", name="Retry failed records").count() == 1
    assert axe.violations(page) == []

    # The session ends: the request goes on by itself, and its page no longer says it waits.
    with world.sandbox.org.lock:
        for row in world.sandbox.org.data.tables["MessagingSession"].values():
            row["Status"] = "Ended"
    world.clock.advance(world.ctx.tunables.open_session_recheck_s + 1)
    world.wait_for([blocked], timeout=60)
    page.goto(f"{console_url}/ui/requests/{blocked}")
    page.locator('#status[data-status="completed"]').wait_for()
    assert page.locator("#why-stuck").count() == 0

    # A look-up parked for a person: permanent until retried, and its Retry restarts it.
    parked = world.submit(PLAIN)
    maker = world.ctx.sessionmaker
    with maker() as session, session.begin():
        # Its resolve message is taken and dropped, as parking does after too many deliveries.
        assert outbox.publish_due(session, lambda *args, **kwargs: None) == 1
        session.add(
            Alert(
                kind="parked_message",
                request_id=parked,
                message="erasure.resolve parked after too many deliveries; retry the request "
                "once the cause is fixed",
            )
        )
    page.goto(f"{console_url}/ui/requests/{parked}")
    said = _cause(page, "permanent")
    assert "stopped for a person" in said and "Retry the look-up" in said
    assert axe.violations(page) == []
    page.get_by_role("button", name="Retry the look-up").click()
    page.locator(".flash").first.wait_for()
    world.wait_for([parked], timeout=60)
    page.goto(f"{console_url}/ui/requests/{parked}")
    page.locator('#status[data-status="completed"]').wait_for()
    assert page.locator("#why-stuck").count() == 0
    context.close()
