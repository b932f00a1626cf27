"""Offline verification speed of an evidence bundle, next to plain SHA-256 of the same bytes.

    python -m bench.audit [--leaves 1000000] [--json]

Builds a signed log of N realistic leaves (RFC 8785 JSON shaped like erasure.audit.leaves
output, ~300 bytes each), exports it with `write_bundle`, then times in the same run:

- plain SHA-256 of every leaf (one hashlib call per leaf: the floor for any per-leaf check),
- plain SHA-256 of the whole leaves.jsonl file in one stream,
- `verify_bundle` (read, canonical check of every leaf, RFC 9162 leaf hashes, tree, roots at
  every checkpoint, signatures), in total and by stage.

Goal (issue 4): verify 1M leaves in under 20 s on 2 cores. Append throughput with 1 and 32
writers is measured by bench/audit_append.py, which needs Postgres.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import rfc8785

from erasure.audit.bundle import LEAVES_FILE, iter_leaf_chunks, write_bundle
from erasure.audit.canonical import is_canonical
from erasure.audit.checkpoint import Checkpoint, SigningKey
from erasure.audit.merkle import MerkleTree, pack_leaf_hashes
from erasure.audit.verify import scan_leaves, verify_bundle

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


def timed(label: str, results: dict[str, float], func: object, *args: object) -> object:
    start = time.perf_counter()
    value = func(*args)  # type: ignore[operator]
    results[label] = time.perf_counter() - start
    return value


def run(n: int) -> dict[str, object]:
    key = SigningKey.generate(ORIGIN)
    times: dict[str, float] = {}
    leaves = timed("generate", times, make_leaves, n)
    assert isinstance(leaves, list)  # noqa: S101
    tree = MerkleTree(pack_leaf_hashes(leaves))
    step = max(1, n // 10)
    sizes = sorted({*range(step, n, step), n})
    notes = [Checkpoint(ORIGIN, size, tree.root(size)).sign(key) for size in sizes]
    total_bytes = sum(len(leaf) + 1 for leaf in leaves)

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        path = Path(tmp) / "bundle"
        timed(
            "export",
            times,
            lambda: write_bundle(
                path, leaves=leaves, checkpoints=notes, verifier_key=key.verifier()
            ),
        )

        def sha_per_leaf() -> None:
            sha = hashlib.sha256
            for leaf in leaves:
                sha(leaf).digest()

        def sha_file() -> None:
            digest = hashlib.sha256()
            with (path / LEAVES_FILE).open("rb") as stream:
                while chunk := stream.read(16 << 20):
                    digest.update(chunk)

        timed("sha256_per_leaf", times, sha_per_leaf)
        timed("sha256_file", times, sha_file)
        timed("stage_canonical", times, lambda: [is_canonical(leaf) for leaf in leaves])
        scan = timed("stage_read_hash_canonical", times, scan_leaves, iter_leaf_chunks(path))
        timed("stage_tree", times, lambda: MerkleTree(scan.leaf_hashes))  # type: ignore[attr-defined]
        report = timed("verify_bundle", times, verify_bundle, path, key.verifier())
    assert report.ok, report.findings  # type: ignore[attr-defined]  # noqa: S101
    return {
        "machine": machine_info(),
        "leaves": n,
        "bytes": total_bytes,
        "checkpoints": len(sizes),
        "seconds": {name: round(value, 3) for name, value in times.items()},
        "verify_over_sha256_per_leaf": round(times["verify_bundle"] / times["sha256_per_leaf"], 2),
        "verify_over_sha256_file": round(times["verify_bundle"] / times["sha256_file"], 2),
        "goal_seconds_for_1m": 20,
        "append": "measured by bench/audit_append.py (needs Postgres)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaf count (default 1M)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    result = run(args.leaves)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    machine = result["machine"]
    assert isinstance(machine, dict)  # noqa: S101
    seconds = result["seconds"]
    assert isinstance(seconds, dict)  # noqa: S101
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"Python {machine['python']}, {machine['platform']}"
    )
    print(
        f"bundle: {result['leaves']:,} leaves, {result['bytes'] / 1e6:.0f} MB, "
        f"{result['checkpoints']} checkpoints"
    )
    print(f"plain SHA-256, one call per leaf:  {seconds['sha256_per_leaf']:.2f} s")
    print(f"plain SHA-256, whole file:         {seconds['sha256_file']:.2f} s")
    print(f"verify_bundle (offline verifier):  {seconds['verify_bundle']:.2f} s")
    print(f"  of which canonical JSON checks:  ~{seconds['stage_canonical']:.2f} s")
    print(f"  read + hash + canonical (scan):  {seconds['stage_read_hash_canonical']:.2f} s")
    print(f"  tree (all levels) + roots:       {seconds['stage_tree']:.2f} s")
    print(f"ratio verify / SHA-256 per leaf:   {result['verify_over_sha256_per_leaf']}x")
    print(f"ratio verify / SHA-256 whole file: {result['verify_over_sha256_file']}x")
    print(f"export (write_bundle):             {seconds['export']:.2f} s")
    print(f"append throughput: {result['append']}")


if __name__ == "__main__":
    main()
