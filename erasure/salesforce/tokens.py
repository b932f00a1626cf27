"""The token cache shared by every worker process of a credential.

One token per credential, fetched by one process at a time: `TokenStore.fetch_lock` serialises the
fetch, and `discard_if_current` is a compare-and-delete so a worker holding a stale token cannot
throw away the fresh one another worker just stored. The token is a secret: stores keep it, nobody
logs it (`CachedToken.__repr__` hides it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import redis
from redis.exceptions import LockError, WatchError


@dataclass(frozen=True)
class CachedToken:
    access_token: str = field(repr=False)
    instance_url: str
    api_instance_url: str
    expires_at: float
    scope: str = ""
    token_format: str | None = None
    issued_at: float = 0.0

    def is_usable(self, *, now: float, margin_s: float) -> bool:
        if self.issued_at:
            # A token shorter-lived than twice the margin would otherwise never count as usable.
            margin_s = min(margin_s, (self.expires_at - self.issued_at) / 2)
        return self.expires_at - margin_s > now

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> CachedToken:
        data = json.loads(raw)
        return cls(**data)


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped token, unverified: we only read timing, never trust identity."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT-shaped token, if it has one (we only need to know when to renew)."""
    exp = (jwt_claims(token) or {}).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


class TokenStore(Protocol):
    """Where a credential's current token lives, shared by all processes that use it."""

    def get(self, key: str) -> CachedToken | None: ...

    def put(self, key: str, token: CachedToken) -> None: ...

    def discard_if_current(self, key: str, access_token: str) -> bool:
        """Delete the cached token only if it is still `access_token`; True if deleted."""
        ...

    def fetch_lock(self, key: str, *, wait_s: float) -> AbstractLock:
        """A lock held while one process fetches a token for `key`."""
        ...


class AbstractLock(Protocol):
    def __enter__(self) -> bool: ...

    def __exit__(self, *exc: object) -> None: ...


class InMemoryTokenStore:
    """Per-process store: right for one process (tests, the CLI), wrong for a worker fleet."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> CachedToken | None:
        with self._guard:
            return self._tokens.get(key)

    def put(self, key: str, token: CachedToken) -> None:
        with self._guard:
            self._tokens[key] = token

    def discard_if_current(self, key: str, access_token: str) -> bool:
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.access_token == access_token:
                del self._tokens[key]
                return True
            return False

    def fetch_lock(self, key: str, *, wait_s: float) -> AbstractLock:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        return _ThreadLock(lock, wait_s)


class _ThreadLock:
    def __init__(self, lock: threading.Lock, wait_s: float) -> None:
        self._lock = lock
        self._wait_s = wait_s
        self._held = False

    def __enter__(self) -> bool:
        self._held = self._lock.acquire(timeout=self._wait_s)
        return self._held

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self._lock.release()


class RedisTokenStore:
    """Tokens in Redis, with a Redis lock so 64 cold workers cause one token request."""

    def __init__(self, client: redis.Redis, *, prefix: str = "erasure:sf") -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}:token:{key}"

    def get(self, key: str) -> CachedToken | None:
        raw = self._redis.get(self._key(key))
        return CachedToken.from_json(raw) if raw else None

    def put(self, key: str, token: CachedToken) -> None:
        # Redis forgets the token when it expires, so a stale token is never handed out after a
        # long pause; the client also checks `expires_at` with its renewal margin.
        ttl_ms = max(1, int((token.expires_at - time.time()) * 1000))
        self._redis.set(self._key(key), token.to_json(), px=ttl_ms)

    def discard_if_current(self, key: str, access_token: str) -> bool:
        name = self._key(key)
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    raw: Any = pipe.get(name)
                    if not raw or CachedToken.from_json(raw).access_token != access_token:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.delete(name)
                    pipe.execute()
                    return True
                except WatchError:
                    continue  # someone stored a token meanwhile: compare again

    def fetch_lock(self, key: str, *, wait_s: float) -> AbstractLock:
        return _RedisLock(self._redis, f"{self._prefix}:token-lock:{key}", wait_s)


class _RedisLock:
    def __init__(self, client: redis.Redis, name: str, wait_s: float) -> None:
        # The lock expires on its own if its holder dies mid-fetch, so the fleet cannot deadlock.
        self._lock = client.lock(name, timeout=max(wait_s, 5.0), blocking_timeout=wait_s)
        self._held = False

    def __enter__(self) -> bool:
        self._held = bool(self._lock.acquire())
        return self._held

    def __exit__(self, *exc: object) -> None:
        if self._held:
            # It may have expired while we fetched; another process may hold it now: leave it.
            with contextlib.suppress(LockError):
                self._lock.release()
