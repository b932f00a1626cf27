"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing over SHA-256.

Pure functions only: no database, no I/O. Leaf hash = SHA-256(0x00 || leaf bytes),
node hash = SHA-256(0x01 || left || right).
"""

from __future__ import annotations

import hashlib

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's exact bytes."""
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
