"""The RFC 9162 leaf and node hashes, and the arithmetic every Merkle module shares."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from erasure.audit.errors import ProofError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
# MTH({}) = SHA-256() (RFC 9162 §2.1.1): the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeRoot = Callable[[int, int], bytes]
"""`subtree_root(start, end)` returns MTH(D[start:end]) of the log's leaves."""

PerfectNode = Callable[[int, int], bytes]
"""`node(level, index)` returns the hash of the perfect subtree over leaves
[index * 2**level, (index + 1) * 2**level); level 0 is the leaf hashes."""


def leaf_hash(leaf: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's exact bytes."""
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def pack_leaf_hashes(leaves: Iterable[bytes]) -> bytes:
    """The leaf hashes of `leaves`, concatenated (32 bytes each), in one pass.

    A list comprehension over hashlib is the fastest pure-Python form; packing avoids one
    Python object per hash for the million-leaf case.
    """
    sha = hashlib.sha256
    return b"".join([sha(b"\x00" + leaf).digest() for leaf in leaves])


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def check_hash(value: bytes, what: str) -> None:
    """Reject anything but a 32-byte hash before it reaches a proof's arithmetic."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
