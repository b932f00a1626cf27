"""Console fixtures: an app whose settings carry a session secret, users of every role, and a
signed-in test client per role."""

from __future__ import annotations

import secrets

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from erasure.accounts.models import Role, User
from erasure.app import create_app
from erasure.audit import store
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.core.models import Org
from erasure.ui import accounts
from tests.support.console import PASSWORD, SignedIn, UserMaker, sign_in


@pytest.fixture(scope="session")
def ui_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"secret_key": SecretStr(secrets.token_urlsafe(32))})


@pytest.fixture
def ui_app(ui_settings: Settings, db_session: Session) -> Flask:
    return create_app(ui_settings, session_factory=lambda: db_session)


@pytest.fixture
def ui_client(ui_app: Flask) -> FlaskClient:
    return ui_app.test_client()


@pytest.fixture
def make_user(db_session: Session) -> UserMaker:
    def make(role: Role) -> User:
        user = accounts.create_user(
            db_session,
            email=f"{role.value}-{secrets.token_hex(4)}@example.org",
            name=f"Test {role.value}",
            role=role,
            password=PASSWORD,
        )
        db_session.flush()
        return user

    return make


@pytest.fixture
def checkpointed(db_session: Session, signing_key: SigningKey, org: Org) -> None:
    """A signed checkpoint over everything so far (rolled back with the test)."""
    from erasure.audit import leaves

    leaves.append(db_session, kind="test.marker", request_id=None, data={})
    while store.sequence(db_session):
        pass
    store.sign_checkpoint(db_session, signing_key, origin="erasure.test/audit")
    db_session.flush()


@pytest.fixture
def signed_in(ui_app: Flask, make_user: UserMaker) -> SignedIn:
    """A fresh client signed in as a new user of `role`, and its CSRF token."""

    def make(role: Role) -> tuple[FlaskClient, str]:
        client = ui_app.test_client()
        return client, sign_in(client, make_user(role))

    return make
