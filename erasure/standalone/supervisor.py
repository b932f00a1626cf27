"""A small process supervisor: it owns the processes it starts, starts a dead one again after a
backoff, and stops them all, in order, within a bound.

- Each child runs in a process group of its own, so a dead child's leftovers (a Celery worker's
  pool, a Postgres's backends) are killed with it, and a terminal's Ctrl-C reaches only us: we
  decide the order of the shutdown.
- A child that exits is started again after a delay that doubles per consecutive failure, up to a
  cap, and starts over once a run has lasted `healthy_after_s`. Every restart is logged.
- `stop()` stops services before what they stand on (higher `layer` first), each with its own
  signal, and SIGKILLs what is still there after its grace, all within a total budget.
- With `adopt_orphans` (Linux) we are a child subreaper: whatever a child leaves behind becomes
  ours, is reaped when it dies (no zombies under a container's init) and is killed at stop.
- The pids of live children are written to `pid_file`, so a supervisor that was itself killed
  leaves nothing the next one does not find (`kill_leftovers`).

Decisions about time (backoff, healthy runs) use an injectable clock; waiting uses the real one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from erasure.standalone.logfiles import LogFiles

_PR_SET_CHILD_SUBREAPER = 36


class StartupFailed(Exception):
    """A piece did not come up; the message says which and where to look."""


@dataclass(frozen=True)
class Service:
    """A process to keep running."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path | None = None
    user: str | None = None  # run as this OS user (the embedded Postgres, when we are root)
    layer: int = 1  # stop order: higher layers first; 0 for what the others stand on
    stop_signal: int = signal.SIGTERM
    stop_grace_s: float = 5.0


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    healthy_after_s: float = 60.0  # a run this long resets the delay to `first_s`

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * self.factor ** max(0, failures - 1)))


@dataclass(frozen=True)
class Restart:
    service: str
    exit_code: int  # negative: killed by that signal
    delay_s: float


@dataclass
class _Child:
    service: Service
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    exit_code: int | None = None
    pumps: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        logs: LogFiles,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        adopt_orphans: bool = False,
        pid_file: Path | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.logs = logs
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.pid_file = pid_file
        self.notify = notify or (lambda _message: None)
        self.log = logs.logger("erasure.standalone.supervisor", "supervisor")
        self.restarts: list[Restart] = []
        self._children: dict[str, _Child] = {}
        self._stopping = False
        self._one_shots: set[int] = set()
        self.adopt_orphans = adopt_orphans and sys.platform == "linux" and _become_subreaper()

    # -- starting and watching ---------------------------------------------------------------

    def start(self, service: Service) -> None:
        """Start `service` now and keep it running until `stop()`."""
        child = _Child(service)
        self._children[service.name] = child
        self._spawn(child)

    def pid(self, name: str) -> int | None:
        child = self._children.get(name)
        return child.process.pid if child and child.process else None

    def exit_code(self, name: str) -> int | None:
        return self._children[name].exit_code

    def pending_restart(self, name: str) -> bool:
        child = self._children[name]
        return child.process is None and child.restart_at is not None

    def poll(self) -> None:
        """Notice dead children, and start again those whose delay has passed."""
        now = self.clock()
        for child in self._children.values():
            if child.process is not None and child.process.poll() is not None:
                self._died(child, child.process, now)
            elif (
                child.process is None
                and child.restart_at is not None
                and now >= child.restart_at
                and not self._stopping
            ):
                self._spawn(child)
        if self.adopt_orphans:
            self._reap_orphans()

    def _spawn(self, child: _Child) -> None:
        service = child.service
        uid: int | None = None
        gid: int | None = None
        groups: list[int] | None = None
        if service.user is not None:  # only as root: drop to that user and its group alone
            entry = pwd.getpwnam(service.user)
            uid, gid, groups = entry.pw_uid, entry.pw_gid, []
        try:
            process = subprocess.Popen(  # noqa: S603  # our own argv, no shell
                list(service.argv),
                env=dict(service.env),
                cwd=service.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=0,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except OSError as exc:  # e.g. the binary vanished: count it as a failed run
            self.log.error(
                "could not start %s: %s", service.name, exc, extra={"service": service.name}
            )
            child.failures += 1
            child.restart_at = self.clock() + self.backoff.delay(child.failures)
            return
        child.process = process
        child.started_at = self.clock()
        child.restart_at = None
        child.exit_code = None
        child.pumps = [p for p in child.pumps if p.is_alive()]
        child.pumps.append(self.logs.pump(service.name, _output_of(process)))
        self.log.info(
            "started %s (pid %d)",
            service.name,
            process.pid,
            extra={"event": "start", "service": service.name, "pid": process.pid},
        )
        self._write_pids()

    def _died(self, child: _Child, process: subprocess.Popen[bytes], now: float) -> None:
        code = process.returncode
        _kill_group(process.pid)  # what it leaves behind goes with it
        child.process = None
        child.exit_code = code
        if now - child.started_at >= self.backoff.healthy_after_s:
            child.failures = 0
        child.failures += 1
        delay = self.backoff.delay(child.failures)
        child.restart_at = now + delay
        name = child.service.name
        self.restarts.append(Restart(name, code, delay))
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with {code}"
        self.log.warning(
            "%s %s; starting it again in %.1f s",
            name,
            how,
            delay,
            extra={"event": "restart", "service": name, "exit_code": code, "delay_s": delay},
        )
        self.notify(
            f"{name} {how}; starting it again in {delay:.1f} s (log: {self.logs.path(name)})"
        )
        self._write_pids()

    def run_once(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], stop: threading.Event
    ) -> int | None:
        """Run a one-shot command (migrations) to its end, its output in its log file; None if
        `stop` was set meanwhile (the command is then killed)."""
        process = subprocess.Popen(  # noqa: S603  # our own argv, no shell
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        pump = self.logs.pump(name, _output_of(process))
        self._one_shots.add(process.pid)
        try:
            while process.poll() is None:
                if stop.wait(0.1):
                    _kill_group(process.pid)
                    process.wait()
                    return None
            return process.returncode
        finally:
            _kill_group(process.pid)
            self._one_shots.discard(process.pid)
            pump.join(timeout=2)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, budget_s: float = 10.0) -> None:
        """Stop every child, higher layers first, within `budget_s` (plus SIGKILL's moment)."""
        self._stopping = True
        started = time.monotonic()
        deadline = started + budget_s
        layers = sorted({c.service.layer for c in self._children.values()}, reverse=True)
        for index, layer in enumerate(layers):
            children = [c for c in self._children.values() if c.service.layer == layer]
            # Keep a moment for each layer below this one.
            reserve = 1.5 * (len(layers) - index - 1)
            grace = max(c.service.stop_grace_s for c in children)
            self._stop_layer(children, min(time.monotonic() + grace, deadline - reserve))
        if self.adopt_orphans:
            self._kill_adopted()
        # The output of what was killed ends with it; don't wait long for the last lines.
        until = time.monotonic() + 1.0
        for child in self._children.values():
            for pump in child.pumps:
                pump.join(timeout=max(0.0, until - time.monotonic()))
        self._write_pids()
        self.log.info(
            "stopped everything in %.1f s",
            time.monotonic() - started,
            extra={"event": "stopped", "seconds": round(time.monotonic() - started, 2)},
        )

    def _stop_layer(self, children: list[_Child], until: float) -> None:
        started = time.monotonic()
        running = [(c, c.process) for c in children if c.process and c.process.poll() is None]
        for child, process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(child.service.stop_signal)
        while any(p.poll() is None for _, p in running) and time.monotonic() < until:
            time.sleep(0.05)
        killed = []
        for child in children:
            if child.process is None:
                continue
            if child.process.poll() is None:
                killed.append(child.service.name)
            _kill_group(child.process.pid)  # the stubborn leader, and stragglers of a polite one
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.exit_code = child.process.wait(timeout=5)
            child.process = None
            child.restart_at = None
        names = [child.service.name for child in children]
        self.log.log(
            logging.WARNING if killed else logging.INFO,
            "stopped %s in %.1f s%s",
            ", ".join(names),
            time.monotonic() - started,
            f"; killed {', '.join(killed)}, which did not stop in time" if killed else "",
            extra={"event": "stop", "services": names, "killed": killed},
        )

    # -- orphans and leftovers ---------------------------------------------------------------

    def _reap_orphans(self) -> None:
        """Reap adopted processes that died; never a child of ours (Popen reaps those)."""
        ours = {c.process.pid for c in self._children.values() if c.process is not None}
        ours |= self._one_shots
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in ours:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def _kill_adopted(self) -> None:
        for orphan in psutil.Process().children():
            with contextlib.suppress(psutil.NoSuchProcess):
                orphan.kill()
        psutil.wait_procs(psutil.Process().children(), timeout=1)
        self._reap_orphans()

    def _write_pids(self) -> None:
        if self.pid_file is None:
            return
        lines = []
        for child in self._children.values():
            if child.process is not None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    created = psutil.Process(child.process.pid).create_time()
                    lines.append(f"{child.process.pid} {created} {child.service.name}\n")
        self.pid_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pid_file.write_text("".join(lines))


def kill_leftovers(pid_file: Path, log: logging.Logger) -> None:
    """Kill the process groups a previous supervisor recorded and that still run (it was
    killed itself, or the machine's init never told it): same pid and the same start time."""
    if not pid_file.exists():
        return
    for line in pid_file.read_text().splitlines():
        pid, created, name = line.split(" ", 2)
        with contextlib.suppress(psutil.NoSuchProcess, ValueError):
            process = psutil.Process(int(pid))
            if process.create_time() == float(created):
                log.warning("killing %s (pid %s) left by a previous run", name, pid)
                _kill_group(int(pid))
    pid_file.unlink()


def _output_of(process: subprocess.Popen[bytes]) -> IO[bytes]:
    if process.stdout is None:
        raise RuntimeError("started without a pipe for its output")
    return process.stdout


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
