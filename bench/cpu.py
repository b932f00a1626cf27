"""Where a benchmark's machine time goes: CPU seconds of a server's processes, of Postgres and of
the benchmark itself, read from /proc (Linux) before and after a measured stretch.

Throughput on a saturated machine is the cores divided by the CPU all processes spend per
request, so this says which part a change has to shrink. Postgres is every process named
`postgres` on the machine (its other work included); a server is its master and its children.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
GROUPS = ("server", "postgres", "load generator")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds) of a process, or None once it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[1] is the parent pid; fields[11] and [12] are user and system clock ticks.
    ticks = int(fields[11]) + int(fields[12])
    return name, int(fields[1]), ticks / os.sysconf("SC_CLK_TCK")


def _snapshot(server_pid: int) -> dict[str, float]:
    table = {
        int(entry.name): stat
        for entry in PROC.iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None
    }
    totals = dict.fromkeys(GROUPS, 0.0)
    for pid, (name, parent, seconds) in table.items():
        if server_pid in (pid, parent):
            totals["server"] += seconds
        elif name == "postgres":
            totals["postgres"] += seconds
        elif pid == os.getpid():
            totals["load generator"] += seconds
    return totals


@dataclass
class Spent:
    """CPU seconds per group over the measured stretch (empty where /proc is not there)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {group: 1000 * s / max(requests, 1) for group, s in self.seconds.items()}


@contextmanager
def measured(server_pid: int) -> Iterator[Spent]:
    """CPU spent while the block runs, by group. Processes that start and end inside the block
    are not seen; a server's workers live for the whole run."""
    spent = Spent()
    if not PROC.is_dir():
        yield spent
        return
    before = _snapshot(server_pid)
    yield spent
    after = _snapshot(server_pid)
    spent.seconds = {group: max(after[group] - before[group], 0.0) for group in GROUPS}
