"""API keys are cached per process with a stated bound: a revoked key (or a changed role) applies
within `api_key_cache_s`, measured here on an injected clock; the secret is still compared on
every request, unknown prefixes are never cached, and a cached key costs no SQL statement. Its
`last_used_at` is recorded at most once a minute, never once per request."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.api_keys import KeyCache, create_api_key, revoke_api_key
from erasure.core.models import Org
from tests.support.list_scale import statements


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_cache(app: Flask, ttl_s: float, clock: Clock) -> None:
    resources = app.extensions["erasure"]
    app.extensions["erasure"] = dataclasses.replace(
        resources, key_cache=KeyCache(ttl_s, clock=clock)
    )


def test_a_revoked_key_is_refused_within_the_bound(
    app: Flask, org: Org, db_session: Session
) -> None:
    clock = Clock()
    with_cache(app, 5.0, clock)
    client = app.test_client()
    key = create_api_key(db_session, name="soon revoked", role=Role.OFFICER)
    db_session.flush()
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 200
    revoke_api_key(db_session, prefix=key.record.prefix)
    db_session.flush()
    clock.now += 4.9  # within the bound the process may still serve it (the stated bound) ...
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 200
    clock.now += 0.1  # ... and at the bound it never does
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 401
    clock.now += 100
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 401


def test_a_changed_role_applies_within_the_bound(app: Flask, org: Org, db_session: Session) -> None:
    clock = Clock()
    with_cache(app, 5.0, clock)
    client = app.test_client()
    key = create_api_key(db_session, name="demoted", role=Role.OFFICER)
    db_session.flush()
    headers = {"Authorization": f"Bearer {key.secret}"}
    body = {"subject": {"phone": "+14155550101"}, "regulation": "gdpr"}
    assert client.post("/v1/erasure-requests", json=body, headers=headers).status_code == 202
    key.record.role = Role.AUDITOR
    db_session.flush()
    clock.now += 5.0
    assert client.post("/v1/erasure-requests", json=body, headers=headers).status_code == 403


def test_the_secret_is_checked_on_every_request_and_misses_are_not_cached(
    app: Flask, org: Org, db_session: Session, engine: Engine
) -> None:
    clock = Clock()
    with_cache(app, 5.0, clock)
    client = app.test_client()
    key = create_api_key(db_session, name="k", role=Role.OFFICER)
    db_session.flush()
    good = {"Authorization": f"Bearer {key.secret}"}
    assert client.get("/v1/erasure-requests", headers=good).status_code == 200
    forged = key.secret[:-4] + ("AAAA" if not key.secret.endswith("AAAA") else "BBBB")
    bad = {"Authorization": f"Bearer {forged}"}
    assert client.get("/v1/erasure-requests", headers=bad).status_code == 401
    # A key made after a miss on its prefix is usable at once: the miss was not remembered.
    cache = app.extensions["erasure"].key_cache
    unknown = "ek_" + "z" * 12 + "_" + "x" * 43
    assert cache.authenticate(db_session, unknown) is None
    assert cache._entries.keys() == {key.record.prefix}
    # A cached key: the page runs one statement fewer than its first request did.
    with statements(engine) as first:
        client.get("/v1/erasure-requests?limit=1", headers=good)
    fresh = create_api_key(db_session, name="fresh", role=Role.OFFICER)
    db_session.flush()
    fresh_headers = {"Authorization": f"Bearer {fresh.secret}"}
    with statements(engine) as uncached:
        client.get("/v1/erasure-requests?limit=1", headers=fresh_headers)
    with statements(engine) as cached:
        client.get("/v1/erasure-requests?limit=1", headers=fresh_headers)
    # The first use also records `last_used_at` (one UPDATE); later ones within a minute do not.
    assert len(cached) == len(uncached) - 2 == len(first)
    assert [sql for sql in uncached if sql.lstrip().upper().startswith("UPDATE")] == [
        sql for sql in uncached if "UPDATE api_keys" in sql
    ]
    assert not any("api_keys" in sql for sql in cached)


def test_ttl_zero_reads_the_key_on_every_request(app: Flask, org: Org, db_session: Session) -> None:
    clock = Clock()
    with_cache(app, 0, clock)
    client = app.test_client()
    key = create_api_key(db_session, name="k", role=Role.OFFICER)
    db_session.flush()
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 200
    key.record.revoked_at = datetime.now(UTC)
    db_session.flush()
    assert client.get("/v1/erasure-requests", headers=headers).status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(
    app: Flask, org: Org, db_session: Session, engine: Engine
) -> None:
    clock = Clock()
    with_cache(app, 0, clock)  # even reading the key every time, the write stays rare
    client = app.test_client()
    key = create_api_key(db_session, name="busy", role=Role.OFFICER)
    db_session.flush()
    assert key.record.last_used_at is None
    headers = {"Authorization": f"Bearer {key.secret}"}
    before = datetime.now(UTC)
    assert client.get("/v1/erasure-requests?limit=1", headers=headers).status_code == 200
    db_session.refresh(key.record)
    first = key.record.last_used_at
    assert first is not None and first >= before
    for _ in range(5):
        clock.now += 10  # within the minute: no write at all
        with statements(engine) as seen:
            client.get("/v1/erasure-requests?limit=1", headers=headers)
        assert not any(sql.lstrip().upper().startswith("UPDATE") for sql in seen), seen
    clock.now += 10.0  # a minute after the first record, this process records again
    with statements(engine) as seen:
        client.get("/v1/erasure-requests?limit=1", headers=headers)
    assert sum("UPDATE api_keys" in sql for sql in seen) == 1
