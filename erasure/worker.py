"""The worker composition root, for `celery -A erasure.worker worker`.

Builds the Celery app from the environment and gives every worker process its own engine
(a forked child must never reuse its parent's connections), its own Salesforce clients, and the
Redis stores that make one token and one Retry-After hold per credential fleet-wide.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init

from erasure.audit import store as audit_store
from erasure.audit.checkpoint import load_signing_key
from erasure.audit.origin import LogIdentityError
from erasure.celery_app import ErasureTask, WorkerResources, create_celery, tunables
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.observability import heartbeats, task_signals
from erasure.observability.logs import configure_logging, quiet_task_events
from erasure.pipeline.context import Pipeline
from erasure.pipeline.salesforce_port import ClientFactory, Clients
from erasure.salesforce_clients import client_builder
from erasure.tasks import registry

settings = Settings.from_env()
configure_logging(settings.log_level)
if not settings.log_task_events:
    quiet_task_events()
task_signals.connect()
del registry  # imported so every task is registered with Celery
celery_app = create_celery(settings)
celery_app.set_current()
celery_app.set_default()
# Workers and beat (`celery -A erasure.worker beat` imports this module too) say they are alive.
heartbeats.install(
    celery_app,
    make_engine(settings.database_url, pooled=False, connect_timeout_s=5),
    interval_s=settings.heartbeat_interval_s,
)


def client_factory(settings: Settings) -> ClientFactory:
    return client_builder(settings)  # a SalesforceClient is a SalesforcePort


def build_pipeline(settings: Settings, engine_pool_size: int = 3) -> Pipeline:
    engine = make_engine(settings.database_url, pool_size=engine_pool_size)
    vault = Vault(settings.encryption_key_bytes)
    return Pipeline(
        sessionmaker=make_sessionmaker(engine),
        clients=Clients(client_factory(settings), vault),
        vault=vault,
        pseudonym_key=settings.pseudonym_key_bytes,
        tunables=tunables(settings),
    )


def _check_audit_log(**_: Any) -> None:
    """Refuse to start with a key or ERASURE_AUDIT_ORIGIN that would split the audit log.

    Connected to worker_init, which runs in the main process before any child is forked;
    SystemExit (not an Exception) is what Celery lets through a signal handler to stop there.
    """
    key = load_signing_key(settings.audit_signing_key_file)
    if key is None:
        return
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            audit_store.check_log_identity(session, key, origin=settings.audit_origin)
    except LogIdentityError as exc:
        raise SystemExit(f"erasure worker refuses to start: {exc}") from None
    finally:
        engine.dispose()


def _install(**_: Any) -> None:
    # A deliveries run keeps up to `delivery_threads` short transactions open at once; the pool
    # opens connections only when they are needed.
    pipeline = build_pipeline(settings, engine_pool_size=max(3, settings.delivery_threads))
    ErasureTask.install(
        WorkerResources(
            settings=settings,
            sessionmaker=pipeline.sessionmaker,
            celery=celery_app,
            pipeline=pipeline,
            signing_key=load_signing_key(settings.audit_signing_key_file),
        )
    )


worker_init.connect(_check_audit_log, weak=False)
# prefork children get their own engine; the solo and thread pools run in the main process.
worker_process_init.connect(_install, weak=False)
worker_init.connect(_install, weak=False)
