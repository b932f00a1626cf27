"""Abuse limits of the HTTP API: a request rate per API key, and a throttle on failed
authentications per client address and per presented key (both answered 429 with Retry-After).

Nothing is counted by a name an attacker can copy. A key's prefix is public (the audit log names
`api-key:<prefix>`), so counting failures or requests by prefix would let anyone lock out a key
they do not hold. Counters are keyed by what the caller controls instead: its address, and a hash
of the exact key it presented. Only the key's holder can spend that key's request rate, and a
forged key with the victim's prefix is a different key with counters of its own.

Counters are fixed windows that start at their first hit. They live in Redis
(`Settings.shared_redis_url`, so every gunicorn worker and every API host share them), and in this
process only when no Redis is configured (tests, a single-process install). A request costs one
Redis command and round trip (one Lua script counts the rate and reads the failure counters),
sent by `start` and read by `Admission.settle`, so intake can overlap it with its first database
round trip; a failed authentication costs one more. If Redis cannot be reached the limits fail open: intake keeps
working, a warning is logged and `erasure_rate_limiter_errors_total` counts it.

Counter names hold client addresses and a salted, truncated SHA-256 of the presented key (not the
stored verifier, which is the key's plain SHA-256): never a key itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from flask import Flask, current_app, g, request
from prometheus_client import Counter

from erasure.config import Settings
from erasure.web.problems import Problem

logger = logging.getLogger(__name__)

THROTTLED = Counter(
    "erasure_http_throttled",
    "Requests answered 429 by the intake's abuse limits, by reason (rate or auth_failures).",
    ["reason"],
)
LIMITER_ERRORS = Counter(
    "erasure_rate_limiter_errors",
    "Rate-limit checks that could not reach Redis (the request was let through).",
)

_EXTENSION = "erasure_limiter"
REDIS_PREFIX = "erasure:rl"


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


Verdict = tuple[str, int] | None  # (reason, retry-after seconds) when refused


class Counters(Protocol):
    def start_check(
        self, rate_key: str | None, rate: Window, fail_keys: Sequence[str], fails: Window
    ) -> Callable[[], Verdict]:
        """Count one request against `rate_key`; the callable returns the verdict. With Redis,
        the counting is sent here and its reply read by the callable, so the caller can do other
        work (a database round trip) while it travels. Call it exactly once."""
        ...

    def record_failure(self, fail_keys: Sequence[str], fails: Window) -> None: ...


def _retry_after(ttl_ms: int, window_s: int) -> int:
    return max(1, math.ceil(ttl_ms / 1000)) if ttl_ms > 0 else window_s


#: The whole check as one script, so a request costs one command to pack and one reply to
#: parse. KEYS: the rate counter when ARGV[1] is "1", then the failure counters. ARGV: counted,
#: rate window seconds, rate limit, failure limit. Answers nothing (admitted) or the reason and
#: the counter's remaining time in ms. Scripts run atomically, so the check sees one moment.
_CHECK_SCRIPT = """
local first = 1
if ARGV[1] == '1' then
  local name = KEYS[1]
  redis.call('SET', name, 0, 'EX', ARGV[2], 'NX')
  if redis.call('INCR', name) > tonumber(ARGV[3]) then
    return {'rate', redis.call('PTTL', name)}
  end
  first = 2
end
for index = first, #KEYS do
  local count = redis.call('GET', KEYS[index])
  if count and tonumber(count) >= tonumber(ARGV[4]) then
    return {'auth_failures', redis.call('PTTL', KEYS[index])}
  end
end
return false
"""


def _verdict(reply: Any, rate: Window, fails: Window) -> Verdict:
    """The verdict from `_CHECK_SCRIPT`'s reply."""
    if reply is None:
        return None
    reason, ttl = reply[0].decode(), int(reply[1])
    return reason, _retry_after(ttl, rate.seconds if reason == "rate" else fails.seconds)


class RedisCounters:
    def __init__(self, client: redis.Redis, *, prefix: str = REDIS_PREFIX) -> None:
        self._redis = client
        self._prefix = prefix
        self._check = client.register_script(_CHECK_SCRIPT)

    def start_check(
        self, rate_key: str | None, rate: Window, fail_keys: Sequence[str], fails: Window
    ) -> Callable[[], Verdict]:
        keys = [f"{self._prefix}:rate:{rate_key}"] if rate_key is not None else []
        keys += [f"{self._prefix}:fail:{key}" for key in fail_keys]
        args = ["1" if rate_key is not None else "0", rate.seconds, rate.limit, fails.limit]
        # One write on a pooled connection, its reply read later: what the script's call does,
        # split in two around the caller's other work.
        command = ("EVALSHA", self._check.sha, len(keys), *keys, *args)
        pool = self._redis.connection_pool
        connection: Any = pool.get_connection()  # redis-py's Connection is untyped
        try:
            connection.send_packed_command(connection.pack_command(*command))
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise

        def finish() -> Verdict:
            scripts_lost = False
            try:
                reply = connection.read_response()
            except redis.exceptions.NoScriptError:
                # Redis restarted or failed over and lost its scripts. That error was the
                # reply, so the connection is in step and goes back to the pool as it is.
                scripts_lost = True
            except BaseException:
                connection.disconnect()  # the reply may be left unread: never reuse it
                raise
            finally:
                pool.release(connection)
            if scripts_lost:
                reply = self._check(keys=keys, args=args)  # loads the script again
            return _verdict(reply, rate, fails)

        return finish

    def record_failure(self, fail_keys: Sequence[str], fails: Window) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in fail_keys:
            name = f"{self._prefix}:fail:{key}"
            pipe.set(name, 0, ex=fails.seconds, nx=True)
            pipe.incr(name)
        pipe.execute()


class MemoryCounters:
    """This process only: for tests and installs without Redis (documented as such)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def _hit(self, name: str, seconds: int, now: float) -> tuple[int, float]:
        count, expires = self._counts.get(name, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + seconds
        self._counts[name] = (count + 1, expires)
        return count + 1, expires

    def _prune(self, now: float) -> None:
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}

    def _check(
        self, rate_key: str | None, rate: Window, fail_keys: Sequence[str], fails: Window
    ) -> Verdict:
        now = time.monotonic()
        with self._guard:
            self._prune(now)
            if rate_key is not None:
                count, expires = self._hit(f"rate:{rate_key}", rate.seconds, now)
                if count > rate.limit:
                    return "rate", max(1, math.ceil(expires - now))
            for key in fail_keys:
                count, expires = self._counts.get(f"fail:{key}", (0, 0.0))
                if expires > now and count >= fails.limit:
                    return "auth_failures", max(1, math.ceil(expires - now))
        return None

    def start_check(
        self, rate_key: str | None, rate: Window, fail_keys: Sequence[str], fails: Window
    ) -> Callable[[], Verdict]:
        verdict = self._check(rate_key, rate, fail_keys, fails)
        return lambda: verdict

    def record_failure(self, fail_keys: Sequence[str], fails: Window) -> None:
        now = time.monotonic()
        with self._guard:
            for key in fail_keys:
                self._hit(f"fail:{key}", fails.seconds, now)


class Limiter:
    def __init__(self, counters: Counters, settings: Settings) -> None:
        self.counters = counters
        self.rate = Window(settings.rate_limit_requests, settings.rate_limit_window_s)
        self.fails = Window(settings.auth_failure_limit, settings.auth_failure_window_s)
        self.forwarded_hops = settings.forwarded_hops

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter:
        url = settings.shared_redis_url
        if url is None:
            return cls(MemoryCounters(), settings)
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(RedisCounters(client), settings)

    @property
    def enabled(self) -> bool:
        return self.rate.limit > 0 or self.fails.limit > 0


def limiter() -> Limiter:
    """The app's limiter, built on first use from its settings."""
    app = current_app
    found: Limiter | None = app.extensions.get(_EXTENSION)
    if found is None:
        from erasure.web.resources import web_resources

        found = app.extensions.setdefault(
            _EXTENSION, Limiter.from_settings(web_resources().settings)
        )
    return found


def install(app: Flask, counters: Counters | None = None) -> None:
    """Build the app's limiter now (optionally on given counters, e.g. a test's Redis)."""
    from erasure.web.resources import WebResources

    resources: WebResources = app.extensions["erasure"]
    app.extensions[_EXTENSION] = (
        Limiter(counters, resources.settings)
        if counters is not None
        else Limiter.from_settings(resources.settings)
    )


def client_address() -> str:
    """The caller's address: REMOTE_ADDR, or the entry `forwarded_hops` from the right of
    X-Forwarded-For when that many trusted proxies stand in front of the service."""
    hops = limiter().forwarded_hops
    if hops > 0:
        chain = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        chain = [part for part in chain if part]
        if len(chain) >= hops:
            return chain[-hops][:64]
    return (request.remote_addr or "unknown")[:64]


def _too_many(reason: str, retry_after: int) -> Problem:
    THROTTLED.labels(reason).inc()
    detail = (
        "too many requests with this API key; retry after the time in Retry-After"
        if reason == "rate"
        else "too many failed authentications; retry after the time in Retry-After"
    )
    return Problem(
        429,
        "Too many requests",
        detail,
        code="too_many_requests",
        headers={"Retry-After": str(retry_after)},
    )


def presented_key_id(token: str) -> str:
    """A name for the exact key presented: a salted SHA-256, truncated. It differs from the
    stored verifier (the key's plain SHA-256), so a counter name matches no database row."""
    return hashlib.sha256(b"erasure:limits:" + token.encode()).hexdigest()[:32]


def _fail_keys(token: str) -> list[str]:
    return [f"addr:{client_address()}", f"key:{presented_key_id(token)}"]


class Admission:
    """This request's limiter check, in flight until `settle` reads its verdict."""

    def __init__(self, finish: Callable[[], Verdict] | None) -> None:
        self._finish = finish

    def settle(self) -> None:
        """Read the verdict (once; later calls do nothing): 429 if the request is refused.
        If Redis cannot be reached the request is let through."""
        finish, self._finish = self._finish, None
        if finish is None:
            return
        try:
            verdict = finish()
        except redis.RedisError:
            LIMITER_ERRORS.inc()
            logger.warning("rate limiter: Redis unreachable, request let through")
            return
        if verdict is not None:
            raise _too_many(*verdict)


def start(token: str) -> Admission:
    """Before authenticating a presented key: count it against its rate, and ask whether the key
    is over its rate or this exact key or the caller's address has failed too often. The answer
    is read by `Admission.settle` (or `settle`), which the caller must reach before any work
    that the verdict could forbid. Nothing here depends on the key's public prefix, so no one
    can exhaust another's key."""
    active = limiter()
    if not active.enabled:
        return Admission(None)
    rate = active.rate if active.rate.limit > 0 else None
    fails = _fail_keys(token) if active.fails.limit > 0 else []
    try:
        finish = active.counters.start_check(
            f"key:{presented_key_id(token)}" if rate is not None else None,
            active.rate,
            fails,
            active.fails,
        )
    except redis.RedisError:
        LIMITER_ERRORS.inc()
        logger.warning("rate limiter: Redis unreachable, request let through")
        return Admission(None)
    admission = Admission(finish)
    g.erasure_admission = admission
    return admission


def settle() -> None:
    """Settle this request's limiter check if it is still in flight: a view that overlaps it
    with its first database round trip calls this before it writes anything."""
    admission: Admission | None = g.get("erasure_admission")
    if admission is not None:
        admission.settle()


def record_failure(token: str) -> None:
    active = limiter()
    if active.fails.limit <= 0:
        return
    try:
        active.counters.record_failure(_fail_keys(token), active.fails)
    except redis.RedisError:
        LIMITER_ERRORS.inc()
        logger.warning("rate limiter: Redis unreachable, failure not counted")
