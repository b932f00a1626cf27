"""Fixtures for integration tests: webhook sources with known secrets, local HTTP receivers."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.core.models import Source
from erasure.integrations import sources
from erasure.integrations.models import WebhookScheme, WebhookSource
from erasure.integrations.transport import AddressGuard
from erasure.workflow import Protection
from tests.support.callbacks import cursor_at_end  # noqa: F401  # a fixture
from tests.support.integrations import LOOPBACK, MakeSource


@pytest.fixture
def make_source(db_session: Session, protection: Protection) -> MakeSource:
    def make(
        system: Source, scheme: WebhookScheme | None = None, **kwargs: object
    ) -> tuple[WebhookSource, str]:
        source, secret = sources.create_source(
            db_session,
            name=f"{system.value.replace('_', '-')}-{uuid.uuid4().hex[:6]}",
            system=system,
            scheme=scheme,
            vault=protection.vault,
            **kwargs,  # type: ignore[arg-type]
        )
        # Committed (to the test's savepoint): a view's rollback must not take the source too.
        db_session.commit()
        return source, secret

    return make


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"callback_allowed_networks": LOOPBACK})


@pytest.fixture
def guard() -> AddressGuard:
    return AddressGuard.allowing(LOOPBACK)


from tests.support.pipeline import (  # noqa: E402, F401  # fixtures: access over the live app
    make_worker,
    make_world,
    redis_server,
    sandbox,
    world,
)
