"""Heartbeats: every worker (once per queue it consumes) and every beat stamp a row of the
`heartbeats` table each `heartbeat_interval_s`, with the database's clock; `/readyz` fails while
the newest stamp of a component is older than `heartbeat_timeout_s`.

In the database because every process on every host already reaches it (the broker may be
RabbitMQ), and its clock is the one clock they all share. The worker's stamp is written from its
consumer's event loop and beat's from its scheduling loop, so a process that is alive but stuck
stops stamping too.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.observability.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT = "beat"
#: Rows of processes gone for longer than this are removed (hosts come and go).
FORGET_AFTER = timedelta(days=1)


def worker_component(queue: str) -> str:
    return f"worker:{queue}"


def queues_of(settings: Settings) -> list[str]:
    """Every queue the service sends tasks to: each needs a live consumer (erasure.worker_pools
    is the one place queues are defined)."""
    del settings  # the queues are fixed by the code, not configured
    from erasure.worker_pools import QUEUES

    return sorted(QUEUES)


def expected_components(queues: Iterable[str]) -> list[str]:
    return [*(worker_component(queue) for queue in queues), BEAT]


def record(engine: Engine, components: Sequence[str], instance: str, *, tidy: bool = False) -> None:
    """Stamp `components` of this process now (database time); `tidy` also forgets processes
    silent for longer than FORGET_AFTER."""
    statement = insert(Heartbeat).values(
        [{"component": component, "instance": instance} for component in components]
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Heartbeat.component, Heartbeat.instance], set_={"beat_at": func.now()}
    )
    with engine.begin() as connection:
        connection.execute(statement)
        if tidy:
            connection.execute(
                delete(Heartbeat).where(Heartbeat.beat_at < func.now() - FORGET_AFTER)
            )


def freshness(session: Session, components: Sequence[str], timeout_s: float) -> dict[str, str]:
    """ "ok", or why not, for each component: its newest stamp against the bound."""
    age = func.extract("epoch", func.now() - func.max(Heartbeat.beat_at))
    rows = session.execute(
        select(Heartbeat.component, age)
        .where(Heartbeat.component.in_(components))
        .group_by(Heartbeat.component)
    )
    ages = {component: float(seconds) for component, seconds in rows}
    checks = {}
    for component in components:
        seconds = ages.get(component)
        if seconds is None:
            checks[component] = "no heartbeat yet"
        elif seconds > timeout_s:
            checks[component] = f"no heartbeat for {int(seconds)} s"
        else:
            checks[component] = "ok"
    return checks


class Pulse:
    """One process's heartbeat writer. A failed write (the database is down) is logged once per
    outage and never raised: the process goes on, and readiness says what is wrong."""

    def __init__(self, engine: Engine, instance: str) -> None:
        self.engine = engine
        self.instance = instance
        self._failing = False

    def beat(self, components: Sequence[str], *, tidy: bool = False) -> None:
        try:
            record(self.engine, components, self.instance, tidy=tidy)
        except SQLAlchemyError as exc:
            if not self._failing:
                logger.warning("heartbeat not recorded: %s", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            logger.info("heartbeat recorded again")
        self._failing = False


def _worker_step(engine: Engine, interval_s: float) -> type[bootsteps.StartStopStep]:
    class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
        """Stamps `worker:<queue>` for each consumed queue from the consumer's event loop."""

        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.timer_entry: Any = None

        def start(self, c: Any) -> None:
            components = [worker_component(queue.name) for queue in c.task_consumer.queues]
            pulse = Pulse(engine, c.hostname)
            pulse.beat(components)
            self.timer_entry = c.timer.call_repeatedly(interval_s, pulse.beat, (components,))

        def stop(self, c: Any) -> None:
            if self.timer_entry is not None:
                self.timer_entry.cancel()
                self.timer_entry = None

        shutdown = stop

    return WorkerHeartbeat


def _beat_scheduler(engine: Engine, interval_s: float) -> type[PersistentScheduler]:
    class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]  # Celery is untyped
        """Celery's file-backed scheduler, stamping `beat` from its loop."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pulse = Pulse(engine, f"{socket.gethostname()}:{os.getpid()}")
            self.next_beat = 0.0

        def tick(self, *args: Any, **kwargs: Any) -> float:
            interval = float(super().tick(*args, **kwargs))
            now = time.monotonic()
            if now >= self.next_beat:
                self.pulse.beat([BEAT], tidy=True)  # one beat per deployment, usually
                self.next_beat = now + interval_s
            return max(0.0, min(interval, self.next_beat - now))

    return HeartbeatScheduler


def install(app: Celery, engine: Engine, *, interval_s: float) -> None:
    """Make this app's workers and beat record heartbeats through `engine`. Give it an engine
    that keeps no connection (`make_engine(..., pooled=False)`): the worker forks after it."""
    app.steps["consumer"].add(_worker_step(engine, interval_s))
    app.conf.beat_scheduler = _beat_scheduler(engine, interval_s)
