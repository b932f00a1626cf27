"""The Celery edge: thin tasks, one module per domain (pipeline, integrations, audit, retention,
outbox), each calling that domain's framework-free code. The Celery app itself is
erasure.celery_app; task names are erasure.task_names; erasure.tasks.registry imports them all."""
