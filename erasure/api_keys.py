"""API keys: `ek_<prefix>_<secret>`, shown once, stored as SHA-256, looked up by prefix.

A SHA-256 is enough (no slow hash): the secret has 256 bits of entropy, so nothing is gained by
stretching it, and every API call would pay for it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import ApiKey, Role

KEY_PREFIX = "ek_"
_PREFIX_BYTES = 6


@dataclass(frozen=True)
class NewApiKey:
    record: ApiKey
    secret: str  # the whole key, to show once


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create_api_key(session: Session, *, name: str, role: Role) -> NewApiKey:
    """Add a key to the session (caller commits) and return it with its one-time secret."""
    prefix = secrets.token_hex(_PREFIX_BYTES)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(name=name, role=role, prefix=prefix, key_hash=_digest(key))
    session.add(record)
    return NewApiKey(record=record, secret=key)


def parse_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None (so a junk header costs no query)."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 2 * _PREFIX_BYTES or not rest or len(key) > 128:
        return None
    return prefix


def authenticate(session: Session, key: str) -> ApiKey | None:
    """The active key this secret belongs to, or None. Constant-time on the secret."""
    prefix = parse_prefix(key)
    if prefix is None:
        return None
    record = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(record.key_hash, _digest(key)):
        return None
    return record


def revoke_api_key(session: Session, *, prefix: str) -> ApiKey | None:
    record = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if record is not None and record.revoked_at is None:
        record.revoked_at = datetime.now(UTC)
    return record


def list_api_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """Keys, oldest first; revoked ones only when asked for."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.prefix)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))
