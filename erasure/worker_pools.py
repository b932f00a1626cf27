"""The two kinds of worker and how to start each: the pipeline (resolve, dispatch, confirm, sweep,
the audit sequencer...) and the deliveries (callbacks, OpenDSR callbacks, ticket comments).

Deliveries wait on receivers at someone else's pace, so they have their own queue and their own
worker processes and never take a slot a deletion needs. The task names stay the same; only
their queue differs. A worker started without `--queues` consumes both (one small machine, a
test); production runs one worker per queue (docker-compose.yml), and so does standalone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from erasure import task_names

PIPELINE_QUEUE = "pipeline"
DELIVERIES_QUEUE = "deliveries"
QUEUES = (PIPELINE_QUEUE, DELIVERIES_QUEUE)

#: The tasks that run on the deliveries queue; every other task runs on the pipeline queue.
DELIVERY_TASKS = (task_names.DISPATCH_CALLBACKS, task_names.SEND_CALLBACKS)


@dataclass(frozen=True)
class WorkerPool:
    """One kind of worker: the queues it consumes and its default number of processes."""

    name: str
    queues: tuple[str, ...]
    concurrency: int

    def celery_args(
        self,
        *,
        concurrency: int | None = None,
        beat_schedule: Path | None = None,
        loglevel: str = "INFO",
        hostname: str | None = None,
    ) -> list[str]:
        """The arguments of `celery -A erasure.worker` for this worker: `worker --queues=...`.
        With `beat_schedule`, the worker also runs beat (the periodic ticks), keeping its schedule
        in that file; run exactly one beat per deployment, next to a pipeline worker."""
        args = [
            "worker",
            f"--queues={','.join(self.queues)}",
            f"--concurrency={concurrency or self.concurrency}",
            f"--loglevel={loglevel}",
            # Two workers on one host need distinct node names.
            f"--hostname={hostname or self.name + '@%h'}",
        ]
        if beat_schedule is not None:
            args += ["--beat", f"--schedule={beat_schedule}"]
        return args

    def command(
        self,
        *,
        concurrency: int | None = None,
        beat_schedule: Path | None = None,
        loglevel: str = "INFO",
        hostname: str | None = None,
    ) -> list[str]:
        """The full argv of a worker process of this kind, run with this interpreter."""
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "erasure.worker",
            *self.celery_args(
                concurrency=concurrency,
                beat_schedule=beat_schedule,
                loglevel=loglevel,
                hostname=hostname,
            ),
        ]


#: Deletions: short database-bound tasks and the periodic ticks.
PIPELINE = WorkerPool("pipeline", (PIPELINE_QUEUE,), concurrency=2)
#: Callbacks and comments: each process runs up to two runs at once (a send run and the
#: dispatcher, or two send runs), each making up to ERASURE_DELIVERY_THREADS calls at once.
DELIVERIES = WorkerPool("deliveries", (DELIVERIES_QUEUE,), concurrency=2)
#: Both queues in one worker: for one small machine or a test, not for production. Its node name
#: stays Celery's default (celery@host), as before the queues were split.
ALL = WorkerPool("celery", QUEUES, concurrency=2)


def parse_queues(text: str) -> tuple[str, ...]:
    """`pipeline`, `deliveries` or both, comma-separated. Raises ValueError naming the choices."""
    chosen: Sequence[str] = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in QUEUES]
    if unknown or not chosen:
        raise ValueError(f"queues are {', '.join(QUEUES)} (comma-separated)")
    return tuple(dict.fromkeys(chosen))
