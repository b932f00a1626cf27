"""API keys: `ek_<prefix>_<secret>`, shown once, stored as SHA-256, looked up by prefix.

A SHA-256 is enough (no slow hash): the secret has 256 bits of entropy, so nothing is gained by
stretching it, and every API call would pay for it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from erasure.accounts.models import ApiKey, Role

KEY_PREFIX = "ek_"
_PREFIX_BYTES = 6
#: How fresh a key's `last_used_at` is kept: written at most once per key and interval, so a busy
#: integration costs one small UPDATE a minute, not one per request.
LAST_USED_EVERY = timedelta(minutes=1)


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


@dataclass(frozen=True)
class KeyIdentity:
    """What a request needs of the key that authenticated it (a plain value: it outlives the
    session it was read in)."""

    id: uuid.UUID
    name: str
    role: Role
    prefix: str


@dataclass(frozen=True)
class _Cached:
    identity: KeyIdentity | None  # None: the key is revoked
    key_hash: bytes
    read_at: float


class KeyCache:
    """Authenticated keys, per process, so most requests do not read `api_keys`.

    The bound: a key revoked (or given another role) is refused (or seen with its new role) by
    every process at most `ttl_s` seconds after the change is committed, because an entry older
    than that is read again before it is used. Unknown prefixes are never cached (anyone can
    send those), and the secret is compared with the stored hash on every request, cached or
    not. `ttl_s=0` reads the key on every request.
    """

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, _Cached] = {}
        self._used: dict[str, float] = {}  # prefix -> when this process last recorded a use
        self._lock = threading.Lock()

    def authenticate(self, session: Session, key: str) -> KeyIdentity | None:
        """The active key this secret belongs to, or None. Constant-time on the secret."""
        prefix = parse_prefix(key)
        if prefix is None:
            return None
        now = self._clock()
        entry = self._entries.get(prefix)
        if entry is None or now - entry.read_at >= self.ttl_s:
            entry = self._read(session, prefix, now)
            if entry is None:
                return None
        if not hmac.compare_digest(entry.key_hash, _digest(key)):
            return None
        return entry.identity

    def holds(self, key: str) -> bool:
        """Whether `authenticate` would answer for this key without reading the database."""
        prefix = parse_prefix(key)
        if prefix is None:
            return True  # refused unread
        entry = self._entries.get(prefix)
        return entry is not None and self._clock() - entry.read_at < self.ttl_s

    def _read(self, session: Session, prefix: str, now: float) -> _Cached | None:
        record = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if record is None:
            return None
        identity = None
        if record.revoked_at is None:
            identity = KeyIdentity(record.id, record.name, record.role, record.prefix)
        entry = _Cached(identity, record.key_hash, now)
        if self.ttl_s > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()  # a bound on memory; the next requests read again
                self._entries[prefix] = entry
        return entry

    def use_due(self, prefix: str) -> bool:
        """Whether this process should record a use of the key now: true at most once per
        LAST_USED_EVERY per key (whatever ttl_s is), so most requests write nothing."""
        now = self._clock()
        with self._lock:
            last = self._used.get(prefix)
            if last is not None and now - last < LAST_USED_EVERY.total_seconds():
                return False
            if len(self._used) >= self._max_entries:
                self._used.clear()
            self._used[prefix] = now
            return True


def record_use(session: Session, key_id: uuid.UUID, at: datetime) -> None:
    """Set the key's `last_used_at` (caller commits). Another process that recorded it within
    LAST_USED_EVERY already did the job, so the row is only written when it is older."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at - LAST_USED_EVERY),
        )
        .values(last_used_at=at)
    )


def list_api_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    """Keys, oldest first; revoked ones only when asked for."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.prefix)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))
