"""Liveness and readiness: /healthz says the process is up; /readyz says the service can do its
work (database reachable, schema at the migrations' head, broker reachable, signing key loaded,
a worker alive for every queue and beat alive, by their heartbeats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from kombu.connection import Connection
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure import schema
from erasure.observability import heartbeats


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(result == "ok" for result in self.checks.values())


def expected_heads(database_url: str) -> set[str]:
    return set(ScriptDirectory.from_config(schema.alembic_config(database_url)).get_heads())


def check_readiness(
    session: Session,
    *,
    heads: set[str],
    broker_url: str,
    has_signing_key: bool,
    components: Sequence[str] = (),
    heartbeat_timeout_s: float = 30.0,
) -> Readiness:
    """Each check's result is "ok" or a short reason; no secret or URL is ever included.
    `components` are the processes that must have sent a heartbeat within the timeout."""
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
    if readiness.checks["database"] == "ok" and readiness.checks["migrations"] == "ok":
        try:
            readiness.checks.update(heartbeats.freshness(session, components, heartbeat_timeout_s))
        except SQLAlchemyError:
            readiness.checks["database"] = "unreachable"
    readiness.checks.update((c, "unknown") for c in components if c not in readiness.checks)
    return readiness
