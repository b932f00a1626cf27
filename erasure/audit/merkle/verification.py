"""Proof verification: the RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) algorithms."""

from __future__ import annotations

from collections.abc import Sequence

from erasure.audit.errors import ProofError
from erasure.audit.merkle.hashing import check_hash, node_hash


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1 to 4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of size {size}")
    check_hash(leaf_hash, "leaf hash")
    for value in proof:
        check_hash(value, "proof hash")
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
    check_hash(root, "root hash")
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def _trivially_consistent(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """Validate inputs; True when no hashing is needed (RFC 9162 assumes 0 < size1 < size2)."""
    check_hash(root1, "first root")
    check_hash(root2, "second root")
    for value in proof:
        check_hash(value, "proof hash")
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
