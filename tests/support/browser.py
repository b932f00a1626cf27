"""The console in a real browser: a live console over HTTP on committed data, Debian's Chromium
driven by Playwright, and signing in through the login form."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from werkzeug.serving import make_server

from erasure.app import create_app
from erasure.config import Mode, Settings
from erasure.db import make_sessionmaker
from tests.support.console import PASSWORD
from tests.support.pipeline import (  # noqa: F401  # fixtures: a sandbox org and a pipeline
    World,
    make_world,
    sandbox,
    world,
)

CHROMIUM = Path("/usr/bin/chromium")


TIMEOUT_MS = 60_000


@pytest.fixture
def console_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The app over real HTTP in development mode (cookies without Secure, as standalone runs)."""
    dev = settings.model_copy(
        update={"mode": Mode.DEVELOPMENT, "secret_key": SecretStr(secrets.token_urlsafe(32))}
    )
    server = make_server(
        "127.0.0.1",
        0,
        create_app(dev, session_factory=make_sessionmaker(engine), owns_sessions=True),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[object]:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


def sign_in(page: object, url: str, email: str) -> None:
    page.goto(f"{url}/ui/sign-in")  # type: ignore[attr-defined]
    page.get_by_label("Email").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT_MS)  # type: ignore[attr-defined]
