"""Offline verification of an evidence bundle, next to a minimal verifier in the same run.

    python -m bench.audit [--leaves 1000000] [--rounds 3] [--json]

Builds a signed log of N realistic leaves (RFC 8785 JSON shaped like erasure.audit.leaves
output, ~300 bytes each), exports it with `write_bundle`, then times, in interleaved rounds
(minimal, ours, minimal, ours, ...):

- the minimal verifier (`minimal_verify` below, the floor for a verifier that proves anything):
  read leaves.jsonl, SHA-256 of 0x00 || leaf per leaf, the RFC 9162 root at every checkpoint
  size from one pass of tree levels, each compared with the root of the checkpoint, whose
  signature is checked; one process;
- `verify_bundle`, which does all of that plus every other check: each leaf is RFC 8785
  canonical, the manifest's files and key, newline termination, and the location of a first
  bad leaf when there is one; its per-leaf work runs on every usable core.

Prints min/median/max wall-clock seconds of each and the ratio of the medians (goal, issue 14:
<= 2x), and the CPU seconds each used (workers included): on a machine busy with other work, the
second core the verifier counts on may not be free, and the CPU figures show what it cost.
Append throughput is measured by bench/audit_append.py, which needs Postgres.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rfc8785

from erasure.audit.bundle import LEAVES_FILE, write_bundle
from erasure.audit.checkpoint import Checkpoint, SigningKey, VerifierKey, open_checkpoint
from erasure.audit.merkle.hashing import pack_leaf_hashes
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.verify import verify_bundle

ORIGIN = "bench.erasure.example/audit"
KINDS = (b"request_received", b"approved", b"targets_resolved", b"batch_sent", b"completed")


def machine_info() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.release()}",
    }


def make_leaves(n: int) -> list[bytes]:
    """N distinct canonical leaves, built from a template (rfc8785.dumps per leaf would take
    longer than the verification being measured); a sample is checked against rfc8785."""
    leaves = [
        b'{"at":"2025-06-01T%02d:%02d:%02d.%06dZ","data":{"batch":%d,"subject":"%064x",'
        b'"targets":[{"read_back":true,"sf_log_id":"0Lg%012d","status":"Succeeded"}]},'
        b'"kind":"%s","request_id":"00000000-0000-4000-8000-%012d","v":1}'
        % (
            (i // 3600) % 24,
            (i // 60) % 60,
            i % 60,
            i % 1000000,
            i % 97,
            i * 2654435761,
            i,
            KINDS[i % len(KINDS)],
            i // 5,
        )
        for i in range(n)
    ]
    for leaf in leaves[:: max(1, n // 100)]:
        assert rfc8785.dumps(json.loads(leaf)) == leaf  # noqa: S101  # template is canonical
    return leaves


def minimal_verify(path: Path, key: VerifierKey) -> bool:
    """The least a verifier must do: leaf hashes, roots at each signed size, signatures."""
    sha = hashlib.sha256
    data = (path / LEAVES_FILE).read_bytes()
    hashes = [sha(b"\x00" + leaf).digest() for leaf in data.split(b"\n")[:-1]]
    del data
    notes = sorted((path / "checkpoints").glob("*.note"))
    checkpoints = [open_checkpoint(note.read_text(encoding="utf-8"), key) for note in notes]
    levels = [hashes]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [sha(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]
        )

    def root(size: int) -> bytes:
        # RFC 9162 MTH of leaves [0, size): its perfect subtrees, largest first, folded from the
        # right (levels[h][j] is the perfect subtree of leaves [j * 2**h, (j + 1) * 2**h)).
        parts, start = [], 0
        for height in reversed(range(size.bit_length())):
            if size >> height & 1:
                parts.append(levels[height][start >> height])
                start += 1 << height
        folded = parts[-1]
        for part in reversed(parts[:-1]):
            folded = sha(b"\x01" + part + folded).digest()
        return folded

    return all(c.size <= len(hashes) and root(c.size) == c.root_hash for c in checkpoints)


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the verifier's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def spread(values: list[float]) -> str:
    return (
        f"min {min(values):.2f} / median {statistics.median(values):.2f} / max {max(values):.2f} s"
    )


def run(n: int, rounds: int) -> dict[str, object]:
    key = SigningKey.generate(ORIGIN)
    leaves = make_leaves(n)
    tree = MerkleTree(pack_leaf_hashes(leaves))
    step = max(1, n // 10)
    sizes = sorted({*range(step, n, step), n})
    notes = [Checkpoint(ORIGIN, size, tree.root(size)).sign(key) for size in sizes]
    total_bytes = sum(len(leaf) + 1 for leaf in leaves)
    minimal: list[float] = []
    ours: list[float] = []
    minimal_cpu: list[float] = []
    ours_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        path = Path(tmp) / "bundle"
        write_bundle(path, leaves=leaves, checkpoints=notes, verifier_key=key.verifier())
        del leaves, tree  # the verifiers read the bundle, as an auditor would
        for _ in range(rounds):
            started, cpu = time.perf_counter(), cpu_seconds()
            assert minimal_verify(path, key.verifier())  # noqa: S101
            minimal.append(time.perf_counter() - started)
            minimal_cpu.append(cpu_seconds() - cpu)
            started, cpu = time.perf_counter(), cpu_seconds()
            report = verify_bundle(path, key.verifier())
            ours.append(time.perf_counter() - started)
            ours_cpu.append(cpu_seconds() - cpu)
            assert report.ok, report.findings  # noqa: S101
    return {
        "machine": machine_info(),
        "leaves": n,
        "bytes": total_bytes,
        "checkpoints": len(sizes),
        "rounds": rounds,
        "minimal_seconds": [round(t, 3) for t in minimal],
        "verify_bundle_seconds": [round(t, 3) for t in ours],
        "minimal_cpu_seconds": [round(t, 3) for t in minimal_cpu],
        "verify_bundle_cpu_seconds": [round(t, 3) for t in ours_cpu],
        "ratio_of_medians": round(statistics.median(ours) / statistics.median(minimal), 2),
        "cpu_ratio_of_medians": round(
            statistics.median(ours_cpu) / statistics.median(minimal_cpu), 2
        ),
        "goal_ratio": 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaf count (default 1M)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    result = run(args.leaves, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    machine = result["machine"]
    assert isinstance(machine, dict)  # noqa: S101
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"Python {machine['python']}, {machine['platform']}"
    )
    print(
        f"bundle: {result['leaves']:,} leaves, {result['bytes'] / 1e6:.0f} MB, "
        f"{result['checkpoints']} checkpoints; {result['rounds']} interleaved rounds"
    )
    print(f"minimal verifier (1 process): {spread(result['minimal_seconds'])}")  # type: ignore[arg-type]
    print(f"verify_bundle (every check):  {spread(result['verify_bundle_seconds'])}")  # type: ignore[arg-type]
    print(f"  CPU seconds, minimal:       {spread(result['minimal_cpu_seconds'])}")  # type: ignore[arg-type]
    print(f"  CPU seconds, verify_bundle: {spread(result['verify_bundle_cpu_seconds'])}")  # type: ignore[arg-type]
    print(f"ratio of medians (wall clock): {result['ratio_of_medians']}x (goal <= 2x)")
    print(
        f"ratio of medians (CPU seconds): {result['cpu_ratio_of_medians']}x "
        "(the wall-clock ratio when no second core is free)"
    )


if __name__ == "__main__":
    main()
