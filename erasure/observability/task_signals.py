"""The worker side of observability: every task runs under the correlation id its message
carried (so its log lines join the HTTP request's), and its run time goes into a histogram."""

from __future__ import annotations

import time
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from erasure import correlation
from erasure.observability import logs, metrics

_started: dict[str, float] = {}


def _on_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Tasks published from inside a task carry its id on to the next one.
    if (
        headers is not None
        and "correlation_id" not in headers
        and (cid := correlation.current.get())
    ):
        headers["correlation_id"] = cid


def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    correlation.current.set(getattr(request, "correlation_id", None) or task_id[:16] or None)
    logs.task_name.set(getattr(task, "name", None))
    _started[task_id] = time.perf_counter()


def _on_postrun(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        metrics.TASK_LATENCY.labels(task.name, (state or "UNKNOWN").lower()).observe(
            time.perf_counter() - started
        )
    correlation.current.set(None)
    logs.task_name.set(None)


def connect() -> None:
    """Hook the handlers to Celery's signals (idempotent: dispatch_uid)."""
    before_task_publish.connect(_on_publish, weak=False, dispatch_uid="erasure-correlation-publish")
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="erasure-correlation-prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="erasure-correlation-postrun")
