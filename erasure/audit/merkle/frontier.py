"""`Frontier`: the right edge of a growing log, which the sequencer stores instead of the tree."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

from erasure.audit.merkle.hashing import EMPTY_ROOT, HASH_SIZE, node_hash


class Frontier:
    """The compact range [0, size) of a log: the perfect subtrees along its right edge.

    One 32-byte hash per set bit of `size`, largest subtree first. Appending a leaf merges
    equal-sized subtrees (amortised O(1), worst case O(log n)); `root()` folds at most 64
    hashes. This is what the sequencer persists instead of rehashing the tree.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        for value in hashes:
            if len(value) != HASH_SIZE:
                raise ValueError("frontier hashes must be 32 bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The right-edge perfect subtree hashes, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        hashes = self._hashes
        size = self._size
        h = leaf_hash
        while size & 1:
            h = node_hash(hashes.pop(), h)
            size >>= 1
        hashes.append(h)
        self._size += 1

    def append_nodes(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash and return every perfect subtree it completes.

        Each entry is (level, index, hash) as `PerfectNode` expects: the leaf itself at
        level 0, then each parent completed by the merge. Storing these (< 2n rows in all)
        is enough to serve any proof through `range_root`.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        hashes = self._hashes
        index = self._size
        level = 0
        h = leaf_hash
        completed = [(0, index, h)]
        while index & 1:
            h = node_hash(hashes.pop(), h)
            index >>= 1
            level += 1
            completed.append((level, index, h))
        hashes.append(h)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes."""
        for value in leaf_hashes:
            self.append(value)

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        root = hashes[-1]
        for value in reversed(hashes[:-1]):
            root = node_hash(value, root)
        return root

    def copy(self) -> Frontier:
        """An independent copy."""
        return Frontier(self._size, self._hashes)

    def to_bytes(self) -> bytes:
        """8-byte big-endian size followed by the hashes: what the database stores."""
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Inverse of `to_bytes`; rejects any length that does not match the size."""
        if len(data) < 8:
            raise ValueError("frontier bytes too short")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if len(body) != HASH_SIZE * size.bit_count():
            raise ValueError("frontier bytes do not match the encoded size")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form: {"size": n, "hashes": [base64, ...]}."""
        return {
            "size": self._size,
            "hashes": [base64.b64encode(value).decode("ascii") for value in self._hashes],
        }

    @classmethod
    def from_json(cls, data: object) -> Frontier:
        """Inverse of `to_json`."""
        if not isinstance(data, dict):
            raise ValueError("frontier JSON must be an object")
        size = data.get("size")
        hashes = data.get("hashes")
        if not isinstance(size, int) or isinstance(size, bool) or not isinstance(hashes, list):
            raise ValueError("frontier JSON needs an integer size and a list of hashes")
        decoded = []
        for value in hashes:
            if not isinstance(value, str):
                raise ValueError("frontier hashes must be base64 strings")
            decoded.append(base64.b64decode(value, validate=True))
        return cls(size, decoded)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()[:16]}...)"
