"""A small closed-loop HTTP load generator: N threads, each with a keep-alive connection,
each sending requests back to back for a fixed time. Reports throughput and latency percentiles."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    #: Percentiles a load generator reported instead of each latency (wrk).
    known_percentiles: dict[float, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        if p in self.known_percentiles:
            return self.known_percentiles[p]
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> str:
        return (
            f"{self.throughput:8.1f} req/s   p50 {self.percentile(50):6.1f} ms   "
            f"p99 {self.percentile(99):6.1f} ms   ({self.requests} requests, {self.errors} errors)"
        )


def run_load(
    host: str,
    port: int,
    make_request: Callable[[int, int], tuple[str, str, bytes, dict[str, str]]],
    *,
    threads: int,
    seconds: float,
    expect_status: int,
) -> LoadResult:
    """`make_request(thread, n)` returns (method, path, body, headers) for each request."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    deadline = time.perf_counter() + seconds
    start = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        start.wait()
        n = 0
        while time.perf_counter() < deadline:
            method, path, body, headers = make_request(index, n)
            n += 1
            began = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                continue
            latencies[index].append((time.perf_counter() - began) * 1000)
            if response.status != expect_status:
                errors[index] += 1
        connection.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [value for chunk in latencies for value in chunk]
    return LoadResult(requests=len(flat), errors=sum(errors), seconds=elapsed, latencies_ms=flat)


def median(values: list[float]) -> float:
    return statistics.median(values)
