"""The correlation id of the unit of work in progress (an HTTP request, or a task it caused).

A leaf module: the outbox stores it with each message so a task published later, from another
process, logs under the id of the HTTP request that caused it.
"""

from __future__ import annotations

from contextvars import ContextVar

current: ContextVar[str | None] = ContextVar("correlation_id", default=None)
