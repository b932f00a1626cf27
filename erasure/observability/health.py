"""Liveness and readiness: /healthz says the process is up; /readyz says it can do its work
(database reachable, schema at the migrations' head, broker reachable, signing key loaded)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from kombu.connection import Connection
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure import schema


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(result == "ok" for result in self.checks.values())


def expected_heads(database_url: str) -> set[str]:
    return set(ScriptDirectory.from_config(schema.alembic_config(database_url)).get_heads())


def check_readiness(
    session: Session, *, heads: set[str], broker_url: str, has_signing_key: bool
) -> Readiness:
    """Each check's result is "ok" or a short reason; no secret or URL is ever included."""
    readiness = Readiness()
    try:
        session.execute(text("SELECT 1"))
        current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
        readiness.checks["database"] = "ok"
        readiness.checks["migrations"] = (
            "ok" if current == heads else "schema is not at the migrations' head"
        )
    except SQLAlchemyError:
        readiness.checks["database"] = "unreachable"
        readiness.checks["migrations"] = "unknown"
    try:
        with Connection(broker_url, connect_timeout=2) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=2)
        readiness.checks["broker"] = "ok"
    except Exception:  # noqa: BLE001  # any failure to connect means "not ready", and says no more
        readiness.checks["broker"] = "unreachable"
    readiness.checks["signing_key"] = "ok" if has_signing_key else "not configured"
    return readiness
