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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask import request
from psycopg.types.json import Jsonb

from erasure.db import Insert, Rows
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


#: The claim, in the statement that carries a request kind's first reads (`Claim.send`): the
#: claim's one row, the lock then (only if granted) the record, read with a snapshot taken after
#: the lock (a function, migration e7b3d1a94c2f, because a statement's own snapshot is taken
#: before its locks are granted), joined to each row of the reads. A join without a condition is
#: a nested loop whose outer side, the claim, runs first; no promise rests on that order (the
#: claim's lock never waits, and its record is read with a snapshot of its own). `present` tells
#: the reads' rows from the NULLs of none.
_CLAIM_COLUMNS = 7
_CLAIM_HEAD = (
    "SELECT c.locked, c.id, c.fingerprint, c.response_status, c.response_body, "
    "c.response_location, c.expires_at, r.* "
    "FROM erasure_claim_key(%(claim_lock)s, %(claim_owner)s, %(claim_key)s) AS c "
    "LEFT JOIN LATERAL (SELECT true AS present, reads.* FROM ("
)
_CLAIM_TAIL = ") AS reads) AS r ON true"
INSERT_SQL = (
    "INSERT INTO idempotency_records (api_key_id, key, fingerprint, response_status, "
    "response_body, response_location, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


class Claim:
    """The claim of a key on a pipelined connection (`erasure.db.pipelined`). It costs no
    statement of its own: `send` (an `erasure.db.Send`) sends a request kind's first reads with
    the claim as one statement, and answers the reads' rows; `outcome` reads the claim's."""

    def __init__(
        self, connection: psycopg.Connection[Any], *, api_key_id: uuid.UUID, key: str, print_: bytes
    ) -> None:
        self._connection, self._print = connection, print_
        self._params = {
            "claim_lock": _lock_key(api_key_id, key),
            "claim_owner": api_key_id,
            "claim_key": key,
        }
        self._cursor: psycopg.Cursor[Any] | None = None
        self._answer: list[tuple[Any, ...]] | None = None

    def send(self, sql: str, params: Mapping[str, Any]) -> Rows:
        """Send the reads `sql` (named parameters, none starting `claim_`) with the claim."""
        if self._cursor is not None:
            raise RuntimeError("a claim is sent once")
        self._cursor = self._connection.execute(
            _CLAIM_HEAD + sql + _CLAIM_TAIL, {**params, **self._params}
        )
        return _ReadsOf(self)

    def _rows(self) -> list[tuple[Any, ...]]:
        """The statement's rows, read once (a pipelined cursor answers once)."""
        if self._answer is None:
            if self._cursor is None:
                raise RuntimeError("the claim was never sent")
            self._answer = self._cursor.fetchall()
        return self._answer

    def outcome(self) -> Replay | None:
        """The stored response to replay, or None to go ahead. Raises Problem 409 (in flight
        elsewhere) or 422 (key reused with another body)."""
        rows = self._rows()
        answer = rows[0] if rows else None
        if not (answer and answer[0]):
            raise Problem(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry later",
                code="idempotency_key_in_use",
                headers={"Retry-After": "1"},
            )
        record_id, print_, status, body, location, expires_at = answer[1:_CLAIM_COLUMNS]
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


class _ReadsOf:
    """The rows of the reads a claim carried, without the claim's columns."""

    def __init__(self, claim: Claim) -> None:
        self._claim = claim

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [row[_CLAIM_COLUMNS + 1 :] for row in self._claim._rows() if row[_CLAIM_COLUMNS]]


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
