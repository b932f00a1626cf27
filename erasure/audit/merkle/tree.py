"""Whole trees and subtree roots: `MerkleTree` in memory, roots from stored perfect subtrees."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

from erasure.audit.merkle.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    PerfectNode,
    node_hash,
    split_point,
)
from erasure.audit.merkle.proofs import consistency_proof, inclusion_proof


class MerkleTree:
    """Every level of the tree over a fixed list of leaf hashes, held as packed bytes.

    Level 0 is the leaf hashes; level k holds the perfect subtrees of 2**k leaves that fit.
    Building costs about n node hashes; afterwards the root at any size <= n, any subtree
    root and any proof take O(log n) hashes. Right-edge subtrees that are not perfect are
    composed on demand (`range_root`).
    """

    __slots__ = ("_levels", "size")

    def __init__(self, leaf_hashes: bytes | Sequence[bytes]) -> None:
        packed = leaf_hashes if isinstance(leaf_hashes, bytes) else b"".join(leaf_hashes)
        if len(packed) % HASH_SIZE:
            raise ValueError("leaf hashes must be a multiple of 32 bytes")
        self.size = len(packed) // HASH_SIZE
        self._levels = [packed, *levels_above(packed)]

    @classmethod
    def from_levels(cls, levels: Sequence[bytes]) -> MerkleTree:
        """A tree from levels built elsewhere (`levels_above` over parts, on several cores):
        level 0 the leaf hashes, each next level the pairwise node hashes of the one below."""
        if not levels or len(levels[0]) % HASH_SIZE:
            raise ValueError("leaf hashes must be a multiple of 32 bytes")
        for below, level in itertools.pairwise(levels):
            if len(level) != len(below) // (2 * HASH_SIZE) * HASH_SIZE:
                raise ValueError("each level must hold half the nodes of the one below")
        if len(levels[-1]) >= 2 * HASH_SIZE:
            raise ValueError("the levels stop before the top of the tree")
        tree = cls.__new__(cls)
        tree.size = len(levels[0]) // HASH_SIZE
        tree._levels = list(levels)
        return tree

    @property
    def leaf_hashes(self) -> bytes:
        """The packed leaf hashes (level 0)."""
        return self._levels[0]

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf `index`."""
        return self.node(0, index)

    def node(self, level: int, index: int) -> bytes:
        """The perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""
        if level < 0 or index < 0 or level >= len(self._levels):
            raise IndexError(f"no perfect subtree at level {level}, index {index}")
        row = self._levels[level]
        offset = index * HASH_SIZE
        if offset + HASH_SIZE > len(row):
            raise IndexError(f"no perfect subtree at level {level}, index {index}")
        return row[offset : offset + HASH_SIZE]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all of them)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} outside 0..{self.size}")
        return prefix_root(size, self.node)

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]); usable as a `SubtreeRoot` for the proof generators."""
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside 0..{self.size}")
        return range_root(start, end, self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"size {size} exceeds the {self.size} leaves held")
        return inclusion_proof(index, size, self.subtree_root)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof from size1 to size2 (default: all leaves)."""
        size2 = self.size if size2 is None else size2
        if size2 > self.size:
            raise ValueError(f"size {size2} exceeds the {self.size} leaves held")
        return consistency_proof(size1, size2, self.subtree_root)


def levels_above(row: bytes) -> list[bytes]:
    """The levels of perfect subtrees above `row` (packed hashes of one level), up to the top.

    Over an aligned block of 2**k leaves this gives that block's part of every level up to k,
    which is how the verifier builds one tree on several cores.
    """
    sha = hashlib.sha256
    levels: list[bytes] = []
    current = row
    # Pairwise hashing of a whole level per comprehension: no per-node Python objects
    # beyond the digest, which is what makes a million-leaf rebuild take about a second.
    while len(current) >= 2 * HASH_SIZE:
        current = b"".join(
            [sha(b"\x01" + current[i : i + 64]).digest() for i in range(0, len(current) - 63, 64)]
        )
        levels.append(current)
    return levels


def root_of(leaf_hashes: bytes | Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (packed or not)."""
    return MerkleTree(leaf_hashes).root()


def prefix_root(size: int, node: PerfectNode) -> bytes:
    """MTH of leaves [0, size) from the perfect subtrees that tile it (one per set bit)."""
    if size == 0:
        return EMPTY_ROOT
    pieces: list[bytes] = []
    offset = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pieces.append(node(level, offset >> level))
            offset += 1 << level
    # The right edge folds up smallest-first: MTH splits at the largest power of two.
    root = pieces.pop()
    while pieces:
        root = node_hash(pieces.pop(), root)
    return root


def range_root(start: int, end: int, node: PerfectNode) -> bytes:
    """MTH(D[start:end]) composed from perfect subtree hashes.

    Any range is fine; for the ranges that occur in proofs (subtrees of the tree) this uses
    at most O(log n) `node` lookups, so the database only needs the perfect subtrees the
    `Frontier` reports.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return node(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(range_root(start, start + k, node), range_root(start + k, end, node))
