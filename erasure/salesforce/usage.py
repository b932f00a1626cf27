"""Calls spent per credential, and Retry-After holds every worker of a credential honours.

Counters are plain data for the scheduler and for metrics. A hold is recorded when Salesforce
answers 429, so every worker (not only the one that got the 429) waits (docs/salesforce.md, rule 3).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Protocol

import redis

from erasure.salesforce.models import CallCounts


class UsageStore(Protocol):
    def record_call(self, credential: str, route: str, outcome: str) -> None:
        """Count one call on `route` that ended with `outcome` (an HTTP status or a word)."""
        ...

    def counts(self, credential: str) -> CallCounts: ...

    def hold(self, credential: str, route: str, until: float) -> None:
        """No call on `route` for this credential before epoch `until`."""
        ...

    def held_until(self, credential: str, route: str) -> float | None: ...


class InMemoryUsageStore:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._counts: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self._holds: dict[tuple[str, str], float] = {}

    def record_call(self, credential: str, route: str, outcome: str) -> None:
        with self._guard:
            self._counts[credential][str(route)][outcome] += 1

    def counts(self, credential: str) -> CallCounts:
        with self._guard:
            routes = self._counts.get(credential, {})
            snapshot = {route: dict(outcomes) for route, outcomes in routes.items()}
        return CallCounts(credential=credential, by_route=snapshot)

    def hold(self, credential: str, route: str, until: float) -> None:
        with self._guard:
            key = (credential, str(route))
            self._holds[key] = max(until, self._holds.get(key, 0.0))

    def held_until(self, credential: str, route: str) -> float | None:
        with self._guard:
            until = self._holds.get((credential, str(route)))
        return until if until is not None and until > time.time() else None


class RedisUsageStore:
    """Counters as Redis hashes (`route|outcome` -> n) and holds as expiring keys."""

    def __init__(self, client: redis.Redis, *, prefix: str = "erasure:sf") -> None:
        self._redis = client
        self._prefix = prefix

    def record_call(self, credential: str, route: str, outcome: str) -> None:
        self._redis.hincrby(f"{self._prefix}:calls:{credential}", f"{route}|{outcome}", 1)

    def counts(self, credential: str) -> CallCounts:
        raw = self._redis.hgetall(f"{self._prefix}:calls:{credential}")
        by_route: dict[str, dict[str, int]] = defaultdict(dict)
        for field_name, value in raw.items():
            name = field_name.decode() if isinstance(field_name, bytes) else str(field_name)
            route, _, outcome = name.partition("|")
            by_route[route][outcome] = int(value)
        return CallCounts(credential=credential, by_route=dict(by_route))

    def hold(self, credential: str, route: str, until: float) -> None:
        ttl_ms = int((until - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        name = f"{self._prefix}:hold:{credential}:{route}"
        # Keep the later of two holds: GT needs the key to exist, so set-if-absent first.
        self._redis.set(name, repr(until), px=ttl_ms, nx=True)
        current = self._redis.get(name)
        if current is not None and float(current) < until:
            self._redis.set(name, repr(until), px=ttl_ms)

    def held_until(self, credential: str, route: str) -> float | None:
        raw = self._redis.get(f"{self._prefix}:hold:{credential}:{route}")
        if raw is None:
            return None
        until = float(raw)
        return until if until > time.time() else None
