"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing over SHA-256.

Pure functions only: no database, no I/O. Leaf hash = SHA-256(0x00 || leaf bytes),
node hash = SHA-256(0x01 || left || right), and the tree over n leaves is the RFC 6962/9162
Merkle Tree Hash (MTH): split at the largest power of two smaller than n.

What lives here and who uses it:

- `Frontier`: the compact range [0, n) of a growing log (one hash per set bit of n). The
  sequencer keeps it in the database (`to_bytes`/`from_bytes`), appends each sequenced leaf
  in O(log n) and signs `root()` without rehashing the tree. `append_nodes` also reports the
  perfect subtrees each append completes, so the database can store them for proofs.
- `inclusion_proof` / `consistency_proof`: RFC 6962 PATH and PROOF, generated from any
  `subtree_root(start, end)` callable; `range_root` builds that callable out of stored perfect
  subtree hashes (`node(level, index)`), so a proof costs O(log n) lookups. To fetch them in
  one query, `*_proof_ranges` + `perfect_nodes` list the (level, index) pairs beforehand.
- `MerkleTree`: every level of a tree held in memory as packed bytes, for the offline
  verifier and for proofs over a list of leaf hashes.
- `verify_inclusion` / `verify_consistency`: the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence

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

_sha256 = hashlib.sha256


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
    sha = _sha256
    return b"".join([sha(b"\x00" + leaf).digest() for leaf in leaves])


def _split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


# --- building trees ---------------------------------------------------------------------------


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
        levels = [packed]
        sha = _sha256
        current = packed
        # Pairwise hashing of a whole level per comprehension: no per-node Python objects
        # beyond the digest, which is what makes a million-leaf rebuild take about a second.
        while len(current) >= 2 * HASH_SIZE:
            current = b"".join(
                [
                    sha(b"\x01" + current[i : i + 64]).digest()
                    for i in range(0, len(current) - 63, 64)
                ]
            )
            levels.append(current)
        self._levels = levels

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
    k = _split_point(n)
    return node_hash(range_root(start, start + k, node), range_root(start + k, end, node))


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


# --- proof generation (RFC 6962 §2.1.1 PATH and §2.1.2 PROOF) ---------------------------------


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [start, end) whose roots form PATH(index, D[0:size]), leaf-up.

    With `perfect_nodes` this tells the database every node a proof needs, for one query.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split_point(end - start)
        if index < start + k:
            siblings.append((start + k, end))
            end = start + k
        else:
            siblings.append((start, start + k))
            start += k
    # Collected root-down; the proof is ordered leaf-up.
    siblings.reverse()
    return siblings


def inclusion_proof(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """PATH(index, D[0:size]): sibling subtree roots from the leaf up to the root."""
    return [subtree_root(a, b) for a, b in inclusion_proof_ranges(index, size)]


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form PROOF(size1, D[0:size2]), in proof order."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"cannot prove consistency from size {size1} to {size2}")
    if size1 in (0, size2):
        return []
    nodes: list[tuple[int, int]] = []
    m, start, end, whole = size1, 0, size2, True
    while True:
        n = end - start
        if m == n:
            # SUBPROOF(m, D[m], true) = {} (the verifier already has that root);
            # SUBPROOF(m, D[m], false) = {MTH(D[m])}.
            if not whole:
                nodes.append((start, end))
            break
        k = _split_point(n)
        if m <= k:
            nodes.append((start + k, end))
            end = start + k
        else:
            nodes.append((start, start + k))
            m -= k
            start += k
            whole = False
    nodes.reverse()
    return nodes


def consistency_proof(size1: int, size2: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true).

    Empty when size1 is 0 or equals size2 (those are consistent by definition).
    """
    return [subtree_root(a, b) for a, b in consistency_proof_ranges(size1, size2)]


def perfect_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) perfect subtrees `range_root(start, end, node)` will look up."""
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return [(n.bit_length() - 1, start // n)]
    k = _split_point(n)
    return perfect_nodes(start, start + k) + perfect_nodes(start + k, end)


# --- proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2) --------------------------------------


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1 to 4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of size {size}")
    _check_hash(leaf_hash, "leaf hash")
    for value in proof:
        _check_hash(value, "proof hash")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof has too few hashes")
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise `ProofError` unless `proof` shows leaf `index` is in the tree with `root`."""
    _check_hash(root, "root hash")
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def _trivially_consistent(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """Validate inputs; True when no hashing is needed (RFC 9162 assumes 0 < size1 < size2)."""
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    for value in proof:
        _check_hash(value, "proof hash")
    if not 0 <= size1 <= size2:
        raise ProofError(f"size {size2} is smaller than {size1}: the log shrank")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}: the log forked")
        return True
    if size1 == 0:
        # The empty tree is a prefix of every tree; there is nothing to prove.
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return True
    if not proof:
        raise ProofError("consistency proof is empty")
    return False


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise `ProofError` unless the tree (size2, root2) extends the tree (size1, root1)."""
    if _trivially_consistent(size1, size2, proof, root1, root2):
        return
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof has too few hashes")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root at size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root at size {size2}")
