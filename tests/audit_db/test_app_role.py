"""The documented app role (docs/app-role.sql) cannot rewrite the audit tables, with or without
the triggers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "app-role.sql"


@pytest.fixture
def app_role(database_url: str, admin_url: str) -> Iterator[str]:
    role = f"erasure_app_{os.getpid()}"
    owner = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    # What `psql -v app_role=... -f docs/app-role.sql` does, without needing psql here.
    script = "\n".join(
        line for line in SCRIPT.read_text().splitlines() if not line.startswith("--")
    )
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(script.replace(':"app_role"', f'"{role}"'))
    yield make_url(owner).set(username=role).render_as_string(hide_password=False)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_app_role_may_append_and_sequence_but_not_rewrite(app_role: str) -> None:
    with psycopg.connect(app_role) as conn:
        leaf_id = conn.execute(
            "INSERT INTO audit_leaves (kind, leaf, leaf_hash) VALUES ('t', 'x', 'h') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("SAVEPOINT s")
        for statement in (
            "UPDATE audit_leaves SET kind = 'forged' WHERE id = %s",
            "DELETE FROM audit_leaves WHERE id = %s",
            "TRUNCATE audit_leaves",
            "DELETE FROM audit_checkpoints WHERE size = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement, [leaf_id] if "%s" in statement else None)
            conn.execute("ROLLBACK TO SAVEPOINT s")
        # The sequencer's column grant is enough to give the leaf its position.
        conn.execute(
            "UPDATE audit_leaves SET leaf_index = -1 - id, sequenced_at = now() WHERE id = %s",
            [leaf_id],
        )
        conn.rollback()
