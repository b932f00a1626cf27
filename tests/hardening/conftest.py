"""Hardening fixtures: an app built with changed settings on the test's session, and a private
redis-server (so counters shared between "workers" are tested against a real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from erasure.app import create_app
from erasure.config import Settings
from tests.support.pipeline import (  # noqa: F401  # fixtures: the pipeline's HTTPS sandbox and
    make_world,  # hand-driven world, for the end-to-end redaction test
    sandbox,
)
from tests.support.processes import RedisServer
from tests.support.web import AppMaker


@pytest.fixture
def make_app(settings: Settings, db_session: Session) -> AppMaker:
    def make(**changes: Any) -> Flask:
        return create_app(settings.model_copy(update=changes), session_factory=lambda: db_session)

    return make


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
