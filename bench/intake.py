"""Intake throughput: `POST /v1/erasure-requests` under gunicorn, next to a bare Flask app doing
one INSERT per request, measured in the same run on the same Postgres.

    python -m bench.intake [--seconds 20] [--threads 8] [--workers 2]

Needs a Postgres (ERASURE_BENCH_ADMIN_URL, default the local one). Prints both figures, their
ratio, and the machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.load import LoadResult, run_load
from bench.machine import describe

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "ERASURE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(name: str) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def gunicorn(
    app: str, port: int, env: dict[str, str], workers: int, threads: int
) -> Iterator[None]:
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    process = subprocess.Popen(
        [
            gunicorn_bin,
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            # Threads overlap each request's database round trips; 1 is the classic sync worker.
            f"--worker-class={'sync' if threads == 1 else 'gthread'}",
            f"--threads={threads}",
            "--log-level=warning",
            app,
        ],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # loopback
                break
            except OSError as exc:
                # The bare app has no /healthz: a 404 means it is up.
                if getattr(exc, "code", None) == 404:
                    break
                time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def body(thread: int, n: int) -> bytes:
    return json.dumps(
        {
            "subject": {"email": f"subject-{thread}-{n}@example.com"},
            "regulation": "gdpr",
            "reference": {"system": "bench", "id": f"{thread}-{n}"},
        }
    ).encode()


def measure(port: int, headers: dict[str, str], args: argparse.Namespace) -> LoadResult:
    # Warm up (imports, connections), then measure.
    run_load(
        "127.0.0.1",
        port,
        lambda t, n: ("POST", "/v1/erasure-requests", body(t, n + 10**6), headers),
        threads=args.threads,
        seconds=2,
        expect_status=202,
    )
    return run_load(
        "127.0.0.1",
        port,
        lambda t, n: ("POST", "/v1/erasure-requests", body(t, n), headers),
        threads=args.threads,
        seconds=args.seconds,
        expect_status=202,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--server-threads",
        type=int,
        default=1,
        help="gunicorn threads per worker (1: sync workers)",
    )
    args = parser.parse_args()
    print(describe())
    print(
        f"load: {args.threads} client threads, {args.seconds:.0f} s per app, gunicorn {args.workers} workers x {args.server_threads} thread(s)"
    )

    bare_url = fresh_database("erasure_bench_bare")
    with psycopg.connect(bare_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bare_requests (id bigserial PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz DEFAULT now())"
        )
    port = free_port()
    with gunicorn(
        "bench.bare_app:create_app()",
        port,
        {"BENCH_DATABASE_URL": bare_url},
        args.workers,
        args.server_threads,
    ):
        bare = measure(port, {"Content-Type": "application/json"}, args)

    erasure_url = fresh_database("erasure_bench").replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    env = {
        "ERASURE_DATABASE_URL": erasure_url,
        "ERASURE_ENCRYPTION_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "ERASURE_PSEUDONYM_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # One key sends everything here: the per-key rate limit would answer 429 instead of
        # measuring intake. A 429 counts as an error below, so a limit hit never passes unseen.
        "ERASURE_RATE_LIMIT_REQUESTS": "0",
    }
    subprocess.run(
        [sys.executable, "-m", "erasure.cli", "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "erasure.cli",
            "orgs",
            "add",
            "bench",
            "--my-domain",
            "https://bench.my.salesforce.com",
        ],
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    key = subprocess.run(
        [
            sys.executable,
            "-m",
            "erasure.cli",
            "api-keys",
            "create",
            "--role",
            "integration",
            "--name",
            "bench",
        ],
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    with gunicorn("erasure.app:create_app()", port, env, args.workers, args.server_threads):
        ours = measure(
            port, {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}, args
        )

    print()
    print(f"bare Flask + 1 INSERT : {bare.summary()}")
    print(f"erasure intake        : {ours.summary()}")
    print(
        f"ratio (erasure / bare): {ours.throughput / bare.throughput:.2f} of the baseline's throughput"
    )


if __name__ == "__main__":
    main()
