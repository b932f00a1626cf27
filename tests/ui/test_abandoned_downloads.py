"""A client that abandons a streamed download (reads the first chunk, then closes) gives its
pooled database connection back at once: a few abandoned CSV exports must not drain the pool
and make every later request wait for a connection."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, select
from werkzeug.test import TestResponse

from erasure.accounts.models import Role, User
from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import BulkUpload, BulkUploadRequest, ErasureRequest, Org
from erasure.db import make_sessionmaker
from erasure.orgs import add_org
from erasure.ui import accounts
from tests.support.console import PASSWORD, sign_in
from tests.support.deliveries import wait_until
from tests.support.list_scale import seed

POOL = 2  # a small pool: more abandoned downloads than connections shows any leak
ROWS = 1500
HIDDEN = re.compile(
    r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">'
)  # more than one 1000-row page, so the export is mid-stream when abandoned


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
    name = f"csv-{secrets.token_hex(4)}"
    with maker() as session:
        org = add_org(session, name=name, my_domain_url="https://csv.my.salesforce.com")
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
    settings = ui_settings.model_copy(update={"default_org": name})  # for bulk rows
    app = create_app(settings, session_factory=maker, owns_sessions=True)
    yield app, user
    with maker() as session:
        uploads = select(BulkUpload.id).where(BulkUpload.user_id == user_id)
        session.execute(delete(BulkUploadRequest).where(BulkUploadRequest.upload_id.in_(uploads)))
        session.execute(delete(BulkUpload).where(BulkUpload.user_id == user_id))
        session.execute(delete(ErasureRequest).where(ErasureRequest.org_id == org_id))
        session.execute(delete(Org).where(Org.id == org_id))
        session.execute(delete(User).where(User.id == user_id))
        session.commit()


def abandon(response: TestResponse, chunks: int = 1) -> None:
    """Read the first `chunks` of a streamed response, then hang up (close it)."""
    assert response.status_code == 200
    body = iter(response.response)  # type: ignore[arg-type]
    for _ in range(chunks):
        assert next(body)
    response.close()


def pool_empty(engine: Engine, what: str) -> None:
    checked_out = engine.pool.checkedout  # type: ignore[attr-defined]
    wait_until(lambda: checked_out() == 0, what, timeout=5)


def test_abandoned_csv_export_returns_its_connection(
    owned_app: tuple[Flask, User], small_pool: Engine
) -> None:
    app, user = owned_app
    client = app.test_client()
    sign_in(client, user)
    pool_empty(small_pool, "the sign-in's connection back")
    for _ in range(POOL + 1):
        abandon(client.get("/ui/requests.csv", buffered=False))
        pool_empty(small_pool, "the abandoned export's connection back in the pool")
    # And the service still answers: more requests than the pool has connections.
    for _ in range(POOL + 1):
        assert client.get("/ui/requests").status_code == 200
    whole = client.get("/ui/requests.csv").get_data(as_text=True)
    assert len(whole.strip().splitlines()) >= 1 + ROWS


def test_abandoned_bulk_upload_returns_its_connection(
    owned_app: tuple[Flask, User], small_pool: Engine
) -> None:
    app, user = owned_app
    client = app.test_client()
    token = sign_in(client, user)
    tag = secrets.token_hex(3)
    for attempt in range(POOL + 1):
        rows = [f"+1415555{attempt}{n:03d},gdpr,jira,A{tag}-{attempt}-{n}" for n in range(3)]
        text = "phone,regulation,reference_system,reference_id\n" + "\n".join(rows) + "\n"
        preview = client.post(
            "/ui/requests/bulk",
            data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "r.csv")},
            content_type="multipart/form-data",
        ).get_data(as_text=True)
        fields = dict(HIDDEN.findall(preview))
        confirm = client.post(
            "/ui/requests/bulk/confirm",
            data=fields,
            content_type="multipart/form-data",
            buffered=False,
        )
        # The page head, then the first chunk's progress (its rows submitted): hang up there.
        abandon(confirm, chunks=2)
        pool_empty(small_pool, "the abandoned upload's connection back in the pool")
    for _ in range(POOL + 1):
        assert client.get("/ui/requests").status_code == 200
