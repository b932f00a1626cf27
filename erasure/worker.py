"""The worker composition root, for `celery -A erasure.worker worker`.

Builds the Celery app from the environment and gives every worker process its own engine
(a forked child must never reuse its parent's connections).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init

from erasure import tasks
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker

settings = Settings.from_env()
celery_app = tasks.create_celery(settings)
celery_app.set_current()
celery_app.set_default()


def _install(**_: Any) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    tasks.ErasureTask.install(
        tasks.WorkerResources(
            settings=settings, sessionmaker=make_sessionmaker(engine), celery=celery_app
        )
    )


# prefork children get their own engine; the solo and thread pools run in the main process.
worker_process_init.connect(_install, weak=False)
worker_init.connect(_install, weak=False)
