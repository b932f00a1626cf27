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

from flask import request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from erasure.api.models import IdempotencyRecord
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


def begin(session: Session, *, api_key_id: uuid.UUID, key: str, print_: bytes) -> Replay | None:
    """Claim the key for this transaction. Returns the stored response to replay, or None to go
    ahead. Raises Problem 409 (in flight elsewhere) or 422 (key reused with another body)."""
    locked = session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(api_key_id, key))))
    if not locked:
        raise Problem(
            409,
            "Request in progress",
            "a request with this Idempotency-Key is still being processed; retry later",
            code="idempotency_key_in_use",
            headers={"Retry-After": "1"},
        )
    now = datetime.now(UTC)
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
        )
    )
    if record is not None and record.expires_at <= now:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
        record = None
    if record is None:
        return None
    if record.fingerprint != print_:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different request body",
            code="idempotency_key_mismatch",
        )
    return Replay(record.response_status, record.response_body, record.response_location)


def remember(
    session: Session,
    *,
    api_key_id: uuid.UUID,
    key: str,
    print_: bytes,
    status: int,
    body: dict[str, Any],
    location: str | None,
    ttl_s: int,
) -> None:
    """Store the response in the caller's transaction. Does not commit."""
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            fingerprint=print_,
            response_status=status,
            response_body=body,
            response_location=location,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )
