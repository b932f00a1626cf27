"""Intake throughput: `POST /v1/erasure-requests` under gunicorn, next to a bare Flask app doing
one INSERT per request, measured in the same run on the same Postgres.

    python -m bench.intake [--seconds 10] [--rounds 3] [--threads 8] [--workers N]
                           [--compare-workers N] [--baseline DIR]

Three apps: the bare one, erasure with two earlier levers undone (LEVERS_OFF: the API key cache and
the idle-only ping), and erasure. `--baseline DIR` adds a fourth: erasure from another source
tree (say `git archive main | tar -x -C DIR`), on the same database, to measure a change
before and after in one run; `--compare-workers N` adds erasure with N gunicorn workers
(another worker count than production's, in the same run).
Fair by construction: all apps run under the production gunicorn configuration (the API
service of docker-compose.yml: erasure/gunicorn_config.py, one sync worker per core, timeouts,
access log; and a Prometheus multiprocess directory), all are up for the whole run and measured in interleaved rounds
(bare, levers off, erasure, bare, ...), every request carries a unique Idempotency-Key (the bare
app ignores it), erasure's per-key rate limiter is on (with a limit the run cannot reach), and
each app has its own database with a unique name. The load generator is `wrk` when it is
installed (`apt-get install wrk`; bench.wrk), else a Python thread pool in this process
(`--load python`); either shares the cores with the apps and Postgres, wrk at a fraction of the
CPU, and its CPU is counted as the load generator's.
Prints each round, min/median/max throughput per app, the ratio of the medians, and the machine
CPU each request cost, by process: the server, Postgres and the load generator (bench.cpu).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

from bench import wrk
from bench.cpu import GROUPS, measured
from bench.databases import unique_database
from bench.load import LoadResult, run_load
from bench.machine import describe
from erasure import gunicorn_config

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The production settings, from this tree whichever tree the app comes from (`--baseline`).
GUNICORN_CONFIG = ROOT / "erasure" / "gunicorn_config.py"


def production_gunicorn(app: str, port: int, workers: int | None) -> list[str]:
    """docker-compose.yml's API command, on a loopback port (with another worker count when
    `workers` is given)."""
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        f"--config={GUNICORN_CONFIG}",
        f"--bind=127.0.0.1:{port}",
    ]
    if workers is not None:
        command.append(f"--workers={workers}")
    return [*command, app]


@contextmanager
def gunicorn(
    app: str, port: int, env: dict[str, str], workers: int | None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        process = subprocess.Popen(
            production_gunicorn(app, port, workers),
            env={**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
            cwd=cwd,  # gunicorn imports the app from its working directory first
            stdout=subprocess.DEVNULL,  # the access log is written, as in production, then dropped
        )
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/healthz", timeout=1
                    )  # loopback
                    break
                except OSError as exc:
                    # The bare app has no /healthz: a 404 means it is up.
                    if getattr(exc, "code", None) == 404:
                        break
                    time.sleep(0.1)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def body(thread: int, n: int) -> bytes:
    return json.dumps(
        {
            "subject": {"email": f"subject-{thread}-{n}@example.com"},
            "regulation": "gdpr",
            "reference": {"system": "bench", "id": f"{thread}-{n}"},
        }
    ).encode()


def request_maker(
    headers: dict[str, str], offset: int
) -> Callable[[int, int], tuple[str, str, bytes, dict[str, str]]]:
    def make(thread: int, n: int) -> tuple[str, str, bytes, dict[str, str]]:
        key = {"Idempotency-Key": f'"{secrets.token_hex(12)}"'}
        return "POST", "/v1/erasure-requests", body(thread, n + offset), headers | key

    return make


def measure(
    port: int, headers: dict[str, str], args: argparse.Namespace, offset: int
) -> tuple[LoadResult, float]:
    """One app's load for one round: the result and the CPU seconds a wrk process spent (0 with
    the Python load generator, whose CPU is this process's own)."""
    if args.load == "wrk":
        return wrk.run_wrk(
            "127.0.0.1",
            port,
            "/v1/erasure-requests",
            authorization=headers.get("Authorization"),
            offset=offset,
            connections=args.threads,
            seconds=args.seconds,
        )
    result = run_load(
        "127.0.0.1",
        port,
        request_maker(headers, offset),
        threads=args.threads,
        seconds=args.seconds,
        expect_status=202,
    )
    return result, 0.0


def erasure_environment(url: str) -> dict[str, str]:
    env = {
        "ERASURE_DATABASE_URL": url,
        "ERASURE_ENCRYPTION_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "ERASURE_PSEUDONYM_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # The limiter stays on (its Redis round trip is part of every request), with a limit
        # the run cannot reach; a 429 would count as an error, so a hit never passes unseen.
        "ERASURE_RATE_LIMIT_REQUESTS": "100000000",
    }

    def cli(*command: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "erasure.cli", *command],
            env={**os.environ, **env},
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()

    cli("orgs", "add", "bench", "--my-domain", "https://bench.my.salesforce.com")
    env["BENCH_KEY"] = cli("api-keys", "create", "--role", "integration", "--name", "bench")
    return env


#: The same app with two earlier levers undone: the API key read on every request and every
#: pooled connection pinged at checkout.
LEVERS_OFF = {"ERASURE_API_KEY_CACHE_S": "0", "ERASURE_DATABASE_PING_IDLE_S": "0"}


def spread(values: list[float]) -> str:
    return f"{min(values):7.1f} / {statistics.median(values):7.1f} / {max(values):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per app and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=8, help="concurrent requests (client threads or connections)"
    )
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk" if wrk.available() else "python",
        help="load generator: wrk when installed (the default then), else Python threads",
    )
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers for every app (production: one per core)"
    )
    parser.add_argument(
        "--compare-workers", type=int, help="also erasure with this many gunicorn workers"
    )
    parser.add_argument("--baseline", type=Path, help="another erasure source tree to measure too")
    args = parser.parse_args()
    print(describe())
    print(
        f"load: {args.threads} concurrent requests from "
        f"{'wrk' if args.load == 'wrk' else 'Python client threads'}, {args.rounds} interleaved rounds of "
        f"{args.seconds:.0f} s per app; gunicorn {args.workers or gunicorn_config.workers} sync "
        "workers (production: one per core), access log, "
        "Prometheus multiprocess dir; unique Idempotency-Key per request; rate limiter on"
    )
    with (
        unique_database("intake_bare", migrate=False) as bare_sa_url,
        unique_database("intake") as erasure_url,
    ):
        bare_url = bare_sa_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(bare_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bare_requests (id bigserial PRIMARY KEY, body jsonb NOT NULL, "
                "created_at timestamptz DEFAULT now())"
            )
        env = erasure_environment(erasure_url)
        bare_headers = {"Content-Type": "application/json"}
        ours_headers = bare_headers | {"Authorization": f"Bearer {env.pop('BENCH_KEY')}"}
        ours = "erasure.app:create_app()"
        apps: dict[str, tuple[str, dict[str, str], dict[str, str], int | None]] = {
            "bare Flask + 1 INSERT": (
                "bench.bare_app:create_app()",
                {"BENCH_DATABASE_URL": bare_url},
                bare_headers,
                args.workers,
            ),
            "erasure, levers off": (ours, env | LEVERS_OFF, ours_headers, args.workers),
            "erasure": (ours, env, ours_headers, args.workers),
        }
        if args.compare_workers is not None:
            apps[f"erasure, {args.compare_workers} workers"] = (
                ours,
                env,
                ours_headers,
                args.compare_workers,
            )
        if args.baseline is not None:
            baseline_env = env | {"PYTHONPATH": str(args.baseline.resolve())}
            apps["erasure @ baseline"] = (ours, baseline_env, ours_headers, args.workers)
        results: dict[str, list[LoadResult]] = {name: [] for name in apps}
        cpu: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
        ports = {name: free_port() for name in apps}
        pids: dict[str, int] = {}
        with ExitStack() as servers:
            for name, (target, app_env, _headers, workers) in apps.items():
                cwd = Path(app_env.get("PYTHONPATH", ROOT))
                server = gunicorn(target, ports[name], app_env, workers, cwd)
                pids[name] = servers.enter_context(server).pid
            warm = argparse.Namespace(**{**vars(args), "seconds": 2})
            for name, (_target, _env, headers, _workers) in apps.items():
                measure(ports[name], headers, warm, 10**8)
            for round_ in range(args.rounds):
                for index, (name, (_target, _env, headers, _workers)) in enumerate(apps.items()):
                    offset = (round_ * len(apps) + index) * 10**6
                    with measured(pids[name]) as spent:
                        result, generator_cpu = measure(ports[name], headers, args, offset)
                    if spent.seconds:
                        spent.seconds["load generator"] += generator_cpu
                    results[name].append(result)
                    cpu[name].append(spent.per_request_ms(result.requests))
                    print(f"round {round_ + 1} {name:<22}: {results[name][-1].summary()}")
    print(f"{'':<22} req/s min / median / max    p99 ms min / median / max")
    for name, runs in results.items():
        print(
            f"{name:<22} {spread([r.throughput for r in runs])}    "
            f"{spread([r.percentile(99) for r in runs])}"
        )
    bare = statistics.median(r.throughput for r in results["bare Flask + 1 INSERT"])
    for name in [name for name in results if name.startswith("erasure")]:
        ratio = statistics.median(r.throughput for r in results[name]) / bare
        print(f"ratio of medians ({name} / bare): {ratio:.2f}x (goal >= 0.35x, stretch 0.5x)")
    # The machine's speed drifts between rounds; a ratio within each round drifts less.
    for name, against in paired_ratios(results):
        per_round = [
            ours.throughput / theirs.throughput
            for ours, theirs in zip(results[name], results[against], strict=True)
        ]
        print(
            f"ratio within each round ({name} / {against}): median {statistics.median(per_round):.2f}x "
            f"(min {min(per_round):.2f}, max {max(per_round):.2f})"
        )
    print(f"levers off: {', '.join(f'{k}={v}' for k, v in LEVERS_OFF.items())}")
    print_cpu(cpu)


def paired_ratios(results: dict[str, list[LoadResult]]) -> list[tuple[str, str]]:
    """(app, app it is compared with): each erasure against the bare app, and erasure against
    its baseline and its other worker count when there are."""
    pairs = [(name, "bare Flask + 1 INSERT") for name in results if name.startswith("erasure")]
    others = [name for name in results if name.endswith(" workers") or name.endswith("@ baseline")]
    return pairs + [("erasure", name) for name in others]


def print_cpu(cpu: dict[str, list[dict[str, float]]]) -> None:
    """Machine CPU per request, median of the rounds, by group (bench.cpu)."""
    if not all(cpu.values()) or not all(run for runs in cpu.values() for run in runs):
        return  # no /proc here
    print(f"CPU ms per request (median of rounds): {' / '.join(GROUPS)} / total")
    for name, runs in cpu.items():
        parts = [statistics.median(run[group] for run in runs) for group in GROUPS]
        figures = " / ".join(f"{part:5.2f}" for part in parts)
        print(f"{name:<22} {figures} / {sum(parts):5.2f}")


if __name__ == "__main__":
    main()
