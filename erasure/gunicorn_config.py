"""gunicorn's settings for the API, read by gunicorn itself (`gunicorn --config
python:erasure.gunicorn_config 'erasure.app:create_app()'`): what docker-compose's `api` service
and `erasure serve` run, and what the intake benchmark measures. Options given on gunicorn's
command line override these.

One sync worker per core this process may use, unless `ERASURE_API_WORKERS` says otherwise. A
submission is mostly CPU (about 1.5 ms of the worker's and 0.5 ms of Postgres's on a 2-core
machine) with short waits on Postgres and Redis; with Postgres on the same cores, more workers
than cores only take turns on them, and each turn finds the caches full of another process's
data: on 2 cores, 2 workers served 1.14x the submissions 4 did, each costing the machine 0.72x
the CPU (bench/intake.py `--compare-workers 4`, 5 interleaved rounds). With Postgres on another
host a request waits longer on the network: there try two per core, and measure.
"""

from __future__ import annotations

import os

MAX_WORKERS = 64


def _workers() -> int:
    raw = os.environ.get("ERASURE_API_WORKERS", "").strip()
    if not raw:
        return max(1, len(os.sched_getaffinity(0)))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise SystemExit(
            f"ERASURE_API_WORKERS must be a number of worker processes, 1 to {MAX_WORKERS}"
        )
    return int(raw)


workers = _workers()
worker_class = "sync"
timeout = 30
graceful_timeout = 20
accesslog = "-"
