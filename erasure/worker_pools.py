"""The kinds of worker and how to start each: the pipeline (resolve: the lookups), the ticks (beat's
periodic tasks: dispatch, confirm, sweep, the audit sequencer...) and the deliveries (callbacks,
OpenDSR callbacks, ticket comments), each with a queue of its own.

Deliveries wait on receivers at someone else's pace, so they have their own worker processes and
never take a slot a deletion needs. Ticks have their own too: a tick expires after a few seconds,
and with the lookups on one queue, a backlog of lookups made every dispatch and confirm tick
expire unrun, so deletions already sent waited for the whole backlog. Sharing a worker's slots
with the lookups, even from a queue of their own, is not enough: while slow lookups hold every
slot, ticks come faster than slots free. The pipeline worker consumes `ticks` too, as a
fallback. The task names stay the same; only their queue differs. A worker started without
`--queues` consumes all three (one small machine, a test); production runs one worker per kind
(docker-compose.yml), and so does standalone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from erasure import task_names

PIPELINE_QUEUE = "pipeline"
TICKS_QUEUE = "ticks"
DELIVERIES_QUEUE = "deliveries"
QUEUES = (PIPELINE_QUEUE, TICKS_QUEUE, DELIVERIES_QUEUE)

#: The tasks that run on the deliveries queue.
DELIVERY_TASKS = (
    task_names.DISPATCH_CALLBACKS,
    task_names.SEND_CALLBACKS,
    task_names.SEND_NOTICE,  # mails to data subjects wait on an SMTP server
)
#: The pipeline's periodic ticks (and the relay's kicks): short, and dropped when they wait too
#: long, so never queued behind lookups. Every other task (resolve) runs on the pipeline queue.
TICK_TASKS = (
    task_names.RELAY_OUTBOX,
    task_names.DISPATCH,
    task_names.CONFIRM,
    task_names.SWEEP,
    task_names.PREDICT,
    task_names.SEQUENCE_AUDIT,
    task_names.CHECKPOINT_AUDIT,
    task_names.SHRED_EXPIRED,
    task_names.SWEEP_NOTICES,
    task_names.RETRIEVE_ACCESS,  # a tick like dispatch: reads entries within each user's budget
    task_names.DESTROY_EXPORTS,
)


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


#: Deletions: the lookups (and ticks, when the ticks' own workers are busy or down).
PIPELINE = WorkerPool("pipeline", (PIPELINE_QUEUE, TICKS_QUEUE), concurrency=2)
#: The periodic ticks alone, so a backlog of lookups never holds the slots they need. Two
#: processes: a dispatch waiting on a delete call's answer does not hold up confirmation.
TICKS = WorkerPool("ticks", (TICKS_QUEUE,), concurrency=2)
#: Callbacks and comments: each process runs up to two runs at once (a send run and the
#: dispatcher, or two send runs), each making up to ERASURE_DELIVERY_THREADS calls at once.
DELIVERIES = WorkerPool("deliveries", (DELIVERIES_QUEUE,), concurrency=2)
#: Every queue in one worker: for one small machine or a test, not for production. Its node name
#: stays Celery's default (celery@host), as before the queues were split.
ALL = WorkerPool("celery", QUEUES, concurrency=2)


def parse_queues(text: str) -> tuple[str, ...]:
    """Queue names, comma-separated. `pipeline` brings `ticks` with it: the ticks drive the
    pipeline, and a worker configured for `pipeline` before they had a queue of their own keeps
    running them. Raises ValueError naming the choices."""
    chosen: list[str] = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in QUEUES]
    if unknown or not chosen:
        raise ValueError(f"queues are {', '.join(QUEUES)} (comma-separated)")
    if PIPELINE_QUEUE in chosen:
        chosen.insert(chosen.index(PIPELINE_QUEUE) + 1, TICKS_QUEUE)
    return tuple(dict.fromkeys(chosen))
