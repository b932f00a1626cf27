"""Every task module, imported so its tasks are registered with Celery: the worker (and a test
that routes every task) imports this."""

from __future__ import annotations

from erasure.tasks import access, audit, integrations, notices, outbox, pipeline, retention

TASK_MODULES = (outbox, pipeline, integrations, audit, retention, notices, access)
