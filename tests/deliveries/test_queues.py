"""Deliveries have their own queue and their own workers: the routes, the argv of each kind of
worker (what standalone and docker-compose start), `erasure worker --queues`, and the compose
file. The end-to-end proof with real workers is tests/pipeline/test_slow_subscribers.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import erasure.tasks.registry  # noqa: F401  # registers every task with Celery
from erasure import task_names
from erasure.celery_app import create_celery
from erasure.cli import main
from erasure.config import Settings
from erasure.worker_pools import (
    ALL,
    DELIVERIES,
    DELIVERIES_QUEUE,
    DELIVERY_TASKS,
    PIPELINE,
    PIPELINE_QUEUE,
    QUEUES,
    TICK_TASKS,
    TICKS,
    TICKS_QUEUE,
    parse_queues,
)
from tests.pipeline.harness import RedisServer, worker_env

ROOT = Path(__file__).resolve().parents[2]


def _queue_of(app: Any, task: str) -> str:
    return str(app.amqp.router.route({}, task, (), {})["queue"].name)


def test_deliveries_and_ticks_are_routed_to_their_own_queues(settings: Settings) -> None:
    app = create_celery(settings)
    ours = sorted(name for name in app.tasks if name.startswith("erasure."))
    assert set(DELIVERY_TASKS) <= set(ours) and set(TICK_TASKS) <= set(ours)
    for name in ours:
        expected = (
            DELIVERIES_QUEUE
            if name in DELIVERY_TASKS
            else TICKS_QUEUE
            if name in TICK_TASKS
            else PIPELINE_QUEUE
        )
        assert _queue_of(app, name) == expected, name
    # Only the lookups stay on the pipeline queue, where a backlog can build up.
    assert [n for n in ours if _queue_of(app, n) == PIPELINE_QUEUE] == ["erasure.resolve"]
    # Beat's ticks go by the same routes (it sends them by name): none waits behind a lookup.
    ticks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    # (Notice mails are the one delivery task beat does not send: the outbox queues each one.)
    assert {t for t in ticks if _queue_of(app, t) == DELIVERIES_QUEUE} == set(DELIVERY_TASKS) - {
        task_names.SEND_NOTICE
    }
    assert task_names.SEND_NOTICE not in ticks
    assert {t for t in ticks if _queue_of(app, t) == TICKS_QUEUE} == set(TICK_TASKS)
    # A worker started without --queues consumes all three.
    assert sorted(app.amqp.queues) == sorted(QUEUES)


def test_the_argv_of_each_kind_of_worker(tmp_path: Path) -> None:
    schedule = tmp_path / "celerybeat-schedule"
    pipeline = PIPELINE.command(beat_schedule=schedule)
    assert pipeline[:5] == [sys.executable, "-m", "celery", "-A", "erasure.worker"]
    assert pipeline[5:] == [
        "worker",
        "--queues=pipeline,ticks",
        "--concurrency=2",
        "--loglevel=INFO",
        "--hostname=pipeline@%h",
        "--beat",
        f"--schedule={schedule}",
    ]
    assert TICKS.command()[5:] == [
        "worker",
        "--queues=ticks",
        "--concurrency=2",
        "--loglevel=INFO",
        "--hostname=ticks@%h",
    ]
    assert DELIVERIES.command()[5:] == [
        "worker",
        "--queues=deliveries",
        "--concurrency=2",
        "--loglevel=INFO",
        "--hostname=deliveries@%h",
    ]
    assert ALL.celery_args(concurrency=3)[1:3] == [
        "--queues=pipeline,ticks,deliveries",
        "--concurrency=3",
    ]


def test_queue_names_are_checked() -> None:
    assert parse_queues("deliveries") == (DELIVERIES_QUEUE,)
    # The pipeline's worker runs its ticks, also when configured before they had their own queue.
    assert parse_queues("pipeline") == PIPELINE.queues == (PIPELINE_QUEUE, TICKS_QUEUE)
    assert parse_queues("pipeline,ticks") == PIPELINE.queues
    assert parse_queues(" pipeline , deliveries,pipeline") == (
        PIPELINE_QUEUE,
        TICKS_QUEUE,
        DELIVERIES_QUEUE,
    )
    for bad in ("", "celery", "pipeline,everything"):
        with pytest.raises(ValueError, match="queues are pipeline, ticks, deliveries"):
            parse_queues(bad)
    result = CliRunner().invoke(main, ["worker", "--queues", "celery"])
    assert result.exit_code == 2
    assert "queues are pipeline, ticks, deliveries" in result.output


@pytest.mark.worker
def test_erasure_worker_consumes_the_queues_it_is_given(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
    erasure = str(Path(sys.executable).with_name("erasure"))
    out = (tmp_path / "worker.out").open("wb")
    process = subprocess.Popen(  # our own command line
        [erasure, "worker", "--queues", "deliveries", "--concurrency", "1"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while b"deliveries@" not in _read(tmp_path) or b" ready." not in _read(tmp_path):
            assert process.poll() is None, _read(tmp_path).decode()[-2000:]
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.1)
        banner = _read(tmp_path).decode()
        queues = banner.split("[queues]")[1].split("[tasks]")[0]
        assert ".> deliveries" in queues and "pipeline" not in queues and "ticks" not in queues
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)
        out.close()
        redis_server.stop()


def _read(tmp_path: Path) -> bytes:
    return (tmp_path / "worker.out").read_bytes()


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_runs_one_worker_per_queue() -> None:
    services = _compose()["services"]
    consumers: dict[str, list[str]] = {}
    for name, service in services.items():
        command = service.get("command") or []
        if "worker" in command and ("erasure" in command or "celery" in command):
            queues = [arg.split("=", 1)[1] for arg in command if arg.startswith("--queues=")]
            assert queues, f"{name} runs a worker without --queues (it would take both queues)"
            consumers[name] = parse_queues(queues[0])
    assert sorted(consumers.values()) == sorted([DELIVERIES.queues, PIPELINE.queues, TICKS.queues])
    for name, queues in consumers.items():
        # The healthcheck pings the node name the worker takes for its kind.
        queue = queues[0]
        assert f"-d {queue}@$$HOSTNAME" in services[name]["healthcheck"]["test"][1]


def test_compose_file_is_valid() -> None:
    compose = (
        [shutil.which("docker"), "compose"]
        if shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"],  # found on PATH above
            capture_output=True,
            check=False,
        ).returncode
        == 0
        else [shutil.which("docker-compose")]
    )
    if compose[0] is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "POSTGRES_PASSWORD": "x",
        "ERASURE_ENCRYPTION_KEYS": "k:x",
        "ERASURE_PSEUDONYM_KEY": "x",
    }
    result = subprocess.run(  # a fixed argv
        [*compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],  # type: ignore[list-item]
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
