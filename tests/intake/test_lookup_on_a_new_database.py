"""The duplicate lookup on a database Postgres has not analysed yet: a new deployment's first
minutes, when autovacuum has not looked at a table that grows by hundreds of rows a second (the
intake bench starts there). Planned on the built-in guesses, the lookup once read every request
of the org for each submission; it must read only the requests that share an identifier."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from erasure import schema, workflow
from tests.support.databases import empty_database
from tests.support.list_scale import ROWS_READ_SQL

TABLES = ("erasure_requests", "subject_identifiers", "orgs")


@pytest.fixture
def unanalysed(admin_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A migrated database whose tables autovacuum leaves alone, so none has statistics."""
    with empty_database(admin_url, "erasure_unanalysed") as url:
        schema.upgrade(url)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
            for table in TABLES:
                c.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            yield c


def _requests_read(c: psycopg.Connection[Any]) -> int:
    """Rows of erasure_requests this transaction has read, by scans or through an index (the
    lookup runs inside a function, whose plan EXPLAIN does not show)."""
    row = c.execute(ROWS_READ_SQL, {"table": "erasure_requests"}).fetchone()
    assert row is not None
    return int(row[0])


def _lookup(c: psycopg.Connection[Any], blinds: list[bytes]) -> tuple[list[Any], int]:
    """The roots found (their ids) and the requests read to find them."""
    with c.transaction():
        before = _requests_read(c)
        rows = c.execute(
            workflow._OPEN_ROOTS_SQL, {"blinds": blinds, "terminal": workflow._TERMINAL}
        ).fetchall()
        return [row[0] for row in rows], _requests_read(c) - before


# A few hundred requests (the first seconds) is where Postgres, guessing, scanned the table: it
# took ten probes of the key for dearer than reading a dozen pages.
@pytest.mark.parametrize("size", [300, 1000, 4000])
def test_the_lookup_reads_only_matching_requests_before_any_statistics(
    unanalysed: psycopg.Connection[Any], size: int
) -> None:
    c = unanalysed
    org = c.execute(
        "INSERT INTO orgs (id, name, my_domain_url) "
        "VALUES (gen_random_uuid(), 'new', 'https://new.my.salesforce.com') RETURNING id"
    ).fetchone()
    assert org is not None
    c.execute(
        "INSERT INTO erasure_requests (id, org_id, source, regulation, received_at, due_at, "
        "status, is_at_risk, attempt, scope, created_at, updated_at) "
        "SELECT gen_random_uuid(), %s, 'api', 'gdpr', now(), now() + interval '30 days', "
        "'received', false, 0, 'subject', now() + g * interval '1 ms', now() "
        "FROM generate_series(1, %s) AS g",
        (org[0], size),
    )
    # Two open requests for one subject, the later linked to the earlier (its root).
    root, linked = (
        c.execute(
            "SELECT id FROM erasure_requests ORDER BY created_at OFFSET %s LIMIT 1", (offset,)
        ).fetchone()
        for offset in (size // 40, size * 3 // 4)
    )
    assert root is not None and linked is not None
    c.execute(
        "UPDATE erasure_requests SET duplicate_of_id = %s WHERE id = %s", (root[0], linked[0])
    )
    blind = uuid.uuid4().bytes * 2
    c.execute(
        "INSERT INTO subject_identifiers (request_id, kind, blind_index) VALUES (%s, 'email', %s)",
        (linked[0], blind),
    )
    reltuples = c.execute(
        "SELECT reltuples FROM pg_class WHERE relname = 'erasure_requests'"
    ).fetchone()
    assert reltuples is not None and reltuples[0] < 0  # never analysed

    found, read = _lookup(c, [blind])  # a known subject: its group's root, read by key
    assert found == [root[0]]
    assert read <= 4

    found, read = _lookup(c, [uuid.uuid4().bytes * 2])  # a new subject: nothing to read
    assert found == []
    assert read == 0
