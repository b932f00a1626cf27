"""A client that abandons a streamed download (reads the first chunk, then closes) gives its
pooled database connection back at once: a few abandoned CSV exports must not drain the pool
and make every later request wait for a connection."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, delete

from erasure.accounts.models import Role, User
from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import Org
from erasure.db import make_sessionmaker
from erasure.orgs import add_org
from erasure.ui import accounts
from tests.support.console import PASSWORD, sign_in
from tests.support.deliveries import wait_until
from tests.support.list_scale import seed

POOL = 2  # a small pool: more abandoned downloads than connections shows any leak
ROWS = 1500  # more than one 1000-row page, so the export is mid-stream when abandoned


@pytest.fixture
def small_pool(ui_settings: Settings) -> Iterator[Engine]:
    # A short pool timeout: a leaked connection fails the next request fast, not after 30 s.
    engine = create_engine(ui_settings.database_url, pool_size=POOL, max_overflow=0, pool_timeout=2)
    yield engine
    engine.dispose()


@pytest.fixture
def owned_app(ui_settings: Settings, small_pool: Engine) -> Iterator[tuple[Flask, User]]:
    """The app on committed data, making and closing its own sessions as in production."""
    maker = make_sessionmaker(small_pool)
    with maker() as session:
        org = add_org(
            session,
            name=f"csv-{secrets.token_hex(4)}",
            my_domain_url="https://csv.my.salesforce.com",
        )
        user = accounts.create_user(
            session,
            email=f"csv-{secrets.token_hex(4)}@example.org",
            name="CSV",
            role=Role.OFFICER,
            password=PASSWORD,
        )
        seed(session, org, ROWS)
        session.commit()
        org_id, user_id = org.id, user.id
    app = create_app(ui_settings, session_factory=maker, owns_sessions=True)
    yield app, user
    from erasure.core.models import ErasureRequest

    with maker() as session:
        session.execute(delete(ErasureRequest).where(ErasureRequest.org_id == org_id))
        session.execute(delete(Org).where(Org.id == org_id))
        session.execute(delete(User).where(User.id == user_id))
        session.commit()


def abandon(client: FlaskClient, url: str) -> None:
    """Start a streamed download, read its first chunk, then hang up (close the response)."""
    response = client.get(url, buffered=False)
    assert response.status_code == 200
    first = next(iter(response.response))  # type: ignore[arg-type]
    assert first
    response.close()


def test_abandoned_csv_export_returns_its_connection(
    owned_app: tuple[Flask, User], small_pool: Engine
) -> None:
    app, user = owned_app
    client = app.test_client()
    sign_in(client, user)
    wait_until(lambda: small_pool.pool.checkedout() == 0, "the sign-in's connection back")  # type: ignore[attr-defined]
    for _ in range(POOL + 1):
        abandon(client, "/ui/requests.csv")
        wait_until(
            lambda: small_pool.pool.checkedout() == 0,  # type: ignore[attr-defined]
            "the abandoned export's connection back in the pool",
            timeout=5,
        )
    # And the service still answers: more requests than the pool has connections.
    for _ in range(POOL + 1):
        assert client.get("/ui/requests").status_code == 200
    whole = client.get("/ui/requests.csv").get_data(as_text=True)
    assert len(whole.strip().splitlines()) >= 1 + ROWS
