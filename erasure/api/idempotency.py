"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a retried POST with the same key
and body replays the first response; the same key with another body is 422; a retry that arrives
while the first is still being processed is 409. Keys are scoped per API key.

The check and the work share one transaction: a transaction-scoped advisory lock on (API key, key)
detects a concurrent duplicate without blocking, and the record is written in the same commit as
the request it describes, so a crash can never leave one without the other.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask import request
from psycopg.types.json import Jsonb

from erasure.db import Insert
from erasure.web.problems import Problem

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]
    location: str | None


def header_key() -> str | None:
    """The Idempotency-Key header as a string, or None. Accepts the draft's quoted sf-string
    (`"abc"`) and, leniently, a bare token."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if (
        not value
        or len(value) > MAX_KEY_LENGTH
        or not value.isprintable()
        or '"' in value
        or "\\" in value
    ):
        raise Problem(
            400,
            "Invalid Idempotency-Key",
            f"the key must be 1 to {MAX_KEY_LENGTH} printable characters",
            code="invalid_idempotency_key",
        )
    return value


def fingerprint(body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _lock_key(api_key_id: uuid.UUID, key: str) -> int:
    digest = hashlib.sha256(b"idempotency:" + api_key_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: The lock, then (only if granted) the record, read with a snapshot taken after the lock, so it
#: holds whatever the lock's last holder committed: one statement, a function (migration
#: e7b3d1a94c2f), because a statement's own snapshot is taken before its locks are granted.
_CLAIM_SQL = (
    "SELECT locked, id, fingerprint, response_status, response_body, response_location, "
    "expires_at FROM erasure_claim_key(%s, %s, %s)"
)
INSERT_SQL = (
    "INSERT INTO idempotency_records (api_key_id, key, fingerprint, response_status, "
    "response_body, response_location, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


class Claim:
    """The claim of a key, sent on a pipelined connection (`erasure.db.pipelined`) as one
    statement (`_CLAIM_SQL`): the lock, then the record. `outcome` reads the answer, so it can
    share a round trip with what is sent after it."""

    def __init__(
        self, connection: psycopg.Connection[Any], *, api_key_id: uuid.UUID, key: str, print_: bytes
    ) -> None:
        self._connection, self._print = connection, print_
        self._answer = connection.execute(_CLAIM_SQL, (_lock_key(api_key_id, key), api_key_id, key))

    def outcome(self) -> Replay | None:
        """The stored response to replay, or None to go ahead. Raises Problem 409 (in flight
        elsewhere) or 422 (key reused with another body)."""
        answer = self._answer.fetchone()
        if not (answer and answer[0]):
            raise Problem(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry later",
                code="idempotency_key_in_use",
                headers={"Retry-After": "1"},
            )
        record_id, print_, status, body, location, expires_at = answer[1:]
        if record_id is None:
            return None
        if expires_at <= datetime.now(UTC):
            self._connection.execute("DELETE FROM idempotency_records WHERE id = %s", (record_id,))
            return None
        if print_ != self._print:
            raise Problem(
                422,
                "Idempotency-Key reused",
                "this Idempotency-Key was already used with a different request body",
                code="idempotency_key_mismatch",
            )
        return Replay(status, body, location)


def record_insert(
    *,
    api_key_id: uuid.UUID,
    key: str,
    print_: bytes,
    status: int,
    body: dict[str, Any],
    location: str | None,
    ttl_s: int,
) -> Insert:
    """The response to store in the claim's transaction, as an INSERT to send with the
    transaction's other writes (`erasure.db.insert_together`)."""
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    return Insert(INSERT_SQL, (api_key_id, key, print_, status, Jsonb(body), location, expires_at))
