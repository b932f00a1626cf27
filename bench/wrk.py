"""Load from `wrk` (Debian's package: `apt-get install wrk`) instead of Python threads: a C load
generator costs the shared cores a fraction of what `bench.load` does, so more of the machine goes
to the servers being compared.

Each request is unique, as `bench.intake.body` makes them: a subject email and an Idempotency-Key
built from the round's offset, wrk's thread and a counter (a Lua script wrk runs per thread). wrk
counts as errors the answers of status 400 or above and the socket errors; it reports latency
percentiles, not each latency. The API key travels in the environment, not on the command line.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.load import LoadResult

SCRIPT = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local counter = 0
local offset = "0"
local auth = os.getenv("BENCH_AUTHORIZATION")
function init(args)
  offset = args[1]
end

function request()
  counter = counter + 1
  local n = offset .. "-" .. thread_id .. "-" .. counter
  local body = '{"subject":{"email":"subject-' .. n .. '@example.com"},"regulation":"gdpr",'
    .. '"reference":{"system":"bench","id":"' .. n .. '"}}'
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = '"' .. n .. '"'}
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("POST", "PATH", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    host: str,
    port: int,
    path: str,
    *,
    authorization: str | None,
    offset: int,
    connections: int,
    seconds: float,
    threads: int = 2,
) -> tuple[LoadResult, float]:
    """One closed-loop run of `connections` concurrent requests for `seconds`: the result and
    the CPU seconds wrk spent."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        script = Path(scratch) / "requests.lua"
        script.write_text(SCRIPT.replace('"PATH"', json.dumps(path)))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [
                "wrk",
                f"--threads={min(threads, connections)}",
                f"--connections={connections}",
                f"--duration={max(1, round(seconds))}s",
                "--timeout=30s",
                f"--script={script}",
                f"http://{host}:{port}{path}",
                "--",
                str(offset),
            ],
            env={**os.environ, "BENCH_AUTHORIZATION": authorization or ""},
            capture_output=True,
            text=True,
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT "))
    figures = json.loads(line.removeprefix("WRK_RESULT "))
    result = LoadResult(
        requests=figures["requests"],
        errors=figures["errors"],
        seconds=figures["duration_us"] / 1e6,
        latencies_ms=[],
        known_percentiles={50: figures["p50_us"] / 1000, 99: figures["p99_us"] / 1000},
    )
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result, cpu
