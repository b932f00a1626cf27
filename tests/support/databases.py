"""Databases of a test's own on the test Postgres server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import make_url


def database_url_for(admin_url: str, name: str, *, driver: str = "psycopg") -> str:
    """The URL of database `name` on the server `admin_url` points at."""
    url = make_url(admin_url).set(database=name)
    if driver:
        url = url.set(drivername=f"postgresql+{driver}")
    return url.render_as_string(hide_password=False)


@contextmanager
def empty_database(admin_url: str, prefix: str) -> Iterator[str]:
    """An empty database (no schema) for the block, dropped at its end; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_for(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SteppedClock:
    """A monotonic clock a test moves by hand (`clock.now += 11`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def terminate(database_url: str, pid: int) -> None:
    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # Wait until the backend is gone, so the test does not race the termination.
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            admin.execute("SELECT pg_sleep(0.01)")
