"""Helpers for the audit tests: generated leaves shaped like real ones, and signed logs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import rfc8785

from erasure.audit.checkpoint import Checkpoint, SigningKey
from erasure.audit.merkle.hashing import pack_leaf_hashes
from erasure.audit.merkle.tree import MerkleTree

ORIGIN = "erasure.test/audit"
KINDS = ("request_received", "approved", "targets_resolved", "batch_sent", "read_back", "completed")


def make_leaf(i: int) -> bytes:
    """A leaf shaped like erasure.audit.leaves.encode_leaf output, unique per index."""
    request_id = uuid.UUID(int=i // 6 + 1)
    document = {
        "v": 1,
        "kind": KINDS[i % len(KINDS)],
        "at": f"2025-06-01T09:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z",
        "request_id": str(request_id),
        "data": {
            "subject": f"{i:064x}",
            "targets": [{"sf_log_id": f"0Lg{i:012d}", "status": "Succeeded", "read_back": True}],
            "batch": i % 97,
        },
    }
    return rfc8785.dumps(document)


def make_leaves(n: int) -> list[bytes]:
    return [make_leaf(i) for i in range(n)]


def sign_checkpoints(
    tree: MerkleTree, sizes: Sequence[int], key: SigningKey, origin: str = ORIGIN
) -> list[str]:
    return [Checkpoint(origin, size, tree.root(size)).sign(key) for size in sizes]


@dataclass(frozen=True)
class SignedLog:
    leaves: list[bytes]
    tree: MerkleTree
    sizes: list[int]
    notes: list[str]
    key: SigningKey


def signed_log(n: int, sizes: Sequence[int], key: SigningKey) -> SignedLog:
    leaves = make_leaves(n)
    tree = MerkleTree(pack_leaf_hashes(leaves))
    return SignedLog(leaves, tree, list(sizes), sign_checkpoints(tree, sizes, key), key)


# Irregular checkpoint sizes, as a sequencer signing every few hundred milliseconds makes them.
SIZES_10K = [1, 7, 500, 1024, 1777, 2500, 3333, 4096, 5000, 6001, 7000, 8192, 9000, 9999, 10000]
