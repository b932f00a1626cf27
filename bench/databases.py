"""Benchmark databases: each run makes its own, with a name no other run (or test) uses, and drops
only that one. Never a fixed name: dropping it WITH (FORCE) would cut off whoever else is using
it on a shared Postgres."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from erasure import schema

ADMIN_URL = os.environ.get(
    "ERASURE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def sqlalchemy_url(name: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    return f"postgresql+psycopg://{parts.get('user', 'postgres')}@{host}:{port}/{name}"


@contextmanager
def unique_database(purpose: str, *, migrate: bool = True) -> Iterator[str]:
    """A new database named `erasure_bench_<purpose>_<pid>_<random>`, migrated to head; yields
    its SQLAlchemy URL and drops it afterwards."""
    name = f"erasure_bench_{purpose}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(name)
    try:
        if migrate:
            schema.upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            # Only this run knows the name, so FORCE cuts off nobody else.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
