"""The verifier's per-leaf work: hash every leaf (RFC 9162) and check it is canonical JSON.

This is the hot path of a million-leaf verification and the only part that reads every leaf,
so it runs on every usable core over ranges of the bundle's leaves.jsonl (`scan_leaf_file`);
the tree and signature checks that follow (`erasure.audit.verify`) only see the packed hashes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from erasure.audit import bundle as files
from erasure.audit.canonical import non_canonical_lines
from erasure.audit.merkle.hashing import HASH_SIZE
from erasure.audit.merkle.tree import MerkleTree, levels_above


@dataclass(frozen=True)
class LeafScan:
    """Per-leaf results: packed leaf hashes and the indices of non-canonical leaves."""

    leaf_hashes: bytes
    count: int
    non_canonical: tuple[int, ...] = ()
    #: The Merkle tree over `leaf_hashes` when the scan built it on several cores (else None,
    #: and the verifier builds it); it is derived data, so it takes no part in comparisons.
    tree: MerkleTree | None = field(default=None, compare=False, repr=False)


def scan_leaves(batches: Iterable[Sequence[bytes]]) -> LeafScan:
    """Hash every leaf and check it is canonical JSON, batch by batch.

    This is the hot path of a million-leaf verification: the hash runs inside a comprehension,
    the canonical check a batch of lines at a time, and nothing but 32 bytes per leaf is kept.
    """
    sha = hashlib.sha256
    packed: list[bytes] = []
    bad: list[int] = []
    count = 0
    for batch in batches:
        packed.append(b"".join([sha(b"\x00" + leaf).digest() for leaf in batch]))
        bad.extend(i + count for i in non_canonical_lines(batch))
        count += len(batch)
    return LeafScan(b"".join(packed), count, tuple(bad))


#: Below this many bytes of leaves, starting processes costs more than it saves.
PARALLEL_FROM_BYTES = 8 << 20
#: Ranges per worker: more, smaller ranges even out a worker that starts late or runs slower.
_RANGES_PER_WORKER = 4


def _scan_range(path: str, start: int, end: int) -> tuple[bytes, int, tuple[int, ...]]:
    """A worker's share: hash and check the lines in bytes [start, end) of leaves.jsonl."""
    scan = scan_leaves([files.read_leaf_range(Path(path), start, end)])
    return scan.leaf_hashes, scan.count, scan.non_canonical


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scan_leaf_file(path: Path, *, workers: int | None = None) -> LeafScan:
    """`scan_leaves` over the bundle's leaves.jsonl, on every usable core.

    The per-leaf work (SHA-256 and the canonical check) is independent from leaf to leaf, so the
    file is cut at newlines into ranges that worker processes read and check on their own; the
    results are joined in file order, so the scan is identical to the single-process one. Small
    bundles, or one core, are scanned in this process.
    """
    workers = usable_cores() if workers is None else workers
    size = (path / files.LEAVES_FILE).stat().st_size
    if workers <= 1 or size < PARALLEL_FROM_BYTES:
        return scan_leaves(files.iter_leaf_chunks(path))
    ranges = files.leaf_ranges(path, workers * _RANGES_PER_WORKER)
    # fork shares the imported verifier with the workers at no cost; it is safe only while this
    # process runs one thread (the CLI does), otherwise a fresh interpreter per worker.
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        parts = list(pool.map(_scan_range, [str(path)] * len(ranges), *zip(*ranges, strict=True)))
        packed: list[bytes] = []
        bad: list[int] = []
        count = 0
        for hashes, n, non_canonical in parts:
            packed.append(hashes)
            bad.extend(count + i for i in non_canonical)
            count += n
        leaf_hashes = b"".join(packed)
        del parts, packed
        tree = _parallel_tree(pool, leaf_hashes, workers)
    return LeafScan(leaf_hashes, count, tuple(bad), tree)


#: The smallest block of leaves a worker builds the tree levels of.
_MIN_TREE_BLOCK = 1 << 12


def _parallel_tree(pool: ProcessPoolExecutor, leaf_hashes: bytes, workers: int) -> MerkleTree:
    """The Merkle tree over `leaf_hashes`, its lower levels built by the workers.

    The leaves are cut into blocks of 2**k, so block b's levels 1..k are exactly the nodes of
    the whole tree's levels 1..k over its leaves (the last, shorter block included: it starts
    on a multiple of 2**k too). The blocks' rows, joined level by level in order, are those
    levels; the few levels above k are hashed here.
    """
    count = len(leaf_hashes) // HASH_SIZE
    block = _MIN_TREE_BLOCK
    while block * 2 * workers * _RANGES_PER_WORKER <= count:
        block *= 2
    step = block * HASH_SIZE
    blocks = [leaf_hashes[i : i + step] for i in range(0, len(leaf_hashes), step)]
    rows = list(pool.map(levels_above, blocks))
    height = block.bit_length() - 1
    levels = [leaf_hashes]
    for level in range(height):
        levels.append(b"".join(row[level] for row in rows if len(row) > level))
    while len(levels) > 1 and not levels[-1]:
        levels.pop()  # fewer leaves than a block: no nodes that high
    levels.extend(levels_above(levels[-1]))
    return MerkleTree.from_levels(levels)
