"""Per-execution-user sliding windows and injected faults for the sandbox.

Windows are per (execution user, route), as Salesforce counts them; their lengths come from the
sandbox config so a benchmark can make an "hour" last seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class SlidingWindows:
    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, user: str, route: str, *, limit: int, window_s: float, now: float) -> int:
        """0 if a call fits now, else whole seconds until the oldest call leaves the window."""
        calls = self._calls.setdefault((user, route), deque())
        while calls and calls[0] <= now - window_s:
            calls.popleft()
        if len(calls) < limit:
            return 0
        return max(1, math.ceil(calls[0] + window_s - now))

    def spend(self, user: str, route: str, *, now: float) -> None:
        self._calls.setdefault((user, route), deque()).append(now)

    def used(self, user: str, route: str, *, window_s: float, now: float) -> int:
        return sum(1 for t in self._calls.get((user, route), ()) if t > now - window_s)

    def clear(self) -> None:
        self._calls.clear()


@dataclass
class Fault:
    """The next `count` calls on `route` (optionally only for `client_id`) misbehave.

    `status` None means "answer normally, only slower". `when` is "before" (nothing happens, the
    call fails) or "after" (the call takes effect, e.g. logs are written, then fails).
    """

    route: str
    count: int = 1
    status: int | None = 503
    when: str = "before"
    latency_s: float = 0.0
    retry_after: str | None = None
    client_id: str | None = None

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if self.status is not None and self.status < 500:
            raise ValueError("injected faults are 5xx statuses (or None for latency only)")
        if self.count < 1:
            raise ValueError("count must be positive")


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, route: str, client_id: str | None) -> Fault | None:
        for fault in self._faults:
            if fault.route == route and fault.client_id in (None, client_id):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
