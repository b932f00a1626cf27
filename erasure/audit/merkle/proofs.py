"""Proof generation: RFC 6962 §2.1.1 PATH (inclusion) and §2.1.2 PROOF (consistency).

Each proof is first a list of leaf ranges whose roots it holds (`*_proof_ranges`), so a
caller backed by stored perfect subtrees can fetch every node it needs (`perfect_nodes`) in
one query before hashing anything.
"""

from __future__ import annotations

from erasure.audit.merkle.hashing import SubtreeRoot, split_point


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [start, end) whose roots form PATH(index, D[0:size]), leaf-up.

    With `perfect_nodes` this tells the database every node a proof needs, for one query.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
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
        k = split_point(n)
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
    k = split_point(n)
    return perfect_nodes(start, start + k) + perfect_nodes(start + k, end)
