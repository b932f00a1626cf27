"""`erasure serve`, `erasure worker`, `erasure standalone`: the long-running processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from erasure.cli.target import Target, pass_target


@click.command()
@click.option(
    "--bind",
    default="127.0.0.1:8000",
    show_default=True,
    help="Address and port to listen on, HOST:PORT (gunicorn's --bind; 0.0.0.0:8000 for all "
    "interfaces).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Gunicorn worker processes serving requests [default: ERASURE_API_WORKERS, else one "
    "per core].",
)
@pass_target
def serve(target: Target, bind: str, workers: int | None) -> None:
    """Run the API under gunicorn, with the settings docker-compose's API service uses
    (erasure/gunicorn_config.py)."""
    target.settings()  # fail here, with a clear message, rather than in every gunicorn worker
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [str(gunicorn), "--config", "python:erasure.gunicorn_config", "--bind", bind]
    if workers is not None:
        args += ["--workers", str(workers)]
    args.append("erasure.app:create_app()")
    os.execv(args[0], args)  # noqa: S606  # replaces this process with gunicorn, no shell involved


def _queues(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    from erasure.worker_pools import parse_queues

    try:
        return parse_queues(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--queues",
    default="pipeline,deliveries",
    show_default=True,
    callback=_queues,
    help="What this worker runs: `pipeline` (the lookups; it takes `ticks` too when free), "
    "`ticks` (the periodic dispatch, confirm, audit sequencer...), `deliveries` (callbacks and "
    "ticket comments), or several. Production runs one worker of each kind, so neither a slow "
    "receiver nor a backlog of lookups takes a slot a deletion needs.",
)
@click.option(
    "--beat/--no-beat", default=False, help="Also run the periodic scheduler in this process."
)
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Tasks this worker runs at once (Celery's pool size).",
)
@click.option(
    "--loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Celery's log level; INFO logs every task received and finished.",
)
@pass_target
def worker(
    target: Target, queues: tuple[str, ...], beat: bool, concurrency: int, loglevel: str
) -> None:
    """Run a Celery worker (and optionally beat)."""
    target.settings()
    from erasure.worker import celery_app
    from erasure.worker_pools import ALL, DELIVERIES, PIPELINE, TICKS, WorkerPool

    kinds = {pool.queues: pool for pool in (PIPELINE, TICKS, DELIVERIES, ALL)}
    pool = kinds.get(queues) or WorkerPool("celery", queues, concurrency)
    if DELIVERIES.queues[0] in queues and len(queues) > 1:
        click.echo(
            "note: this worker runs deliveries and deletions in the same slots, so a slow callback "
            "receiver can delay deletions; in production run `erasure worker --queues pipeline`, "
            "`erasure worker --queues ticks` and `erasure worker --queues deliveries`",
            err=True,
        )
    argv = pool.celery_args(concurrency=concurrency, loglevel=loglevel.upper())
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@click.command()
@click.option(
    "--data-dir",
    default="./.erasure",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the database, the broker's queue, the generated keys and the logs live.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the API and the console.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface the API listens on (0.0.0.0 for all; mind that it is plain HTTP).",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=True,
    show_default=True,
    help="Run the Salesforce sandbox org.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Log every periodic task the worker and beat run (by default they log only what "
    "matters: warnings, errors and the work done for requests).",
)
def standalone(data_dir: Path, port: int, host: str, sandbox: bool, verbose: bool) -> None:
    """Run everything on this machine: embedded Postgres and Redis, the API, a worker, the sandbox."""
    from erasure.standalone import INSTALL, missing_packages, run

    missing = missing_packages()
    if missing:
        raise click.ClickException(
            f"erasure standalone needs the standalone extra ({', '.join(missing)} missing): {INSTALL}"
        )

    run(data_dir=data_dir, host=host, port=port, with_sandbox=sandbox, verbose=verbose)
