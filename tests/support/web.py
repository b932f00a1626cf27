"""The app under test: API keys by role, a live server over real HTTP, data committed for real, an
app with changed settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.config import Settings
from tests.support.pipeline import make_world, sandbox  # noqa: F401

KeyMaker = Callable[[Role], str]


@dataclass
class LiveServer:
    url: str
    settings: Settings
    sessionmaker: Callable[[], Session]


@dataclass
class Committed:
    """An org and an API key committed for real (for tests over real HTTP or across processes)."""

    org_name: str
    key: str
    headers: dict[str, str]


AppMaker = Callable[..., Flask]
