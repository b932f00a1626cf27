"""RFC 6962 / RFC 9162 Merkle tree: published vectors, proofs, frontier, properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.audit.errors import ProofError
from erasure.audit.merkle.frontier import Frontier
from erasure.audit.merkle.hashing import EMPTY_ROOT, leaf_hash, node_hash, pack_leaf_hashes
from erasure.audit.merkle.proofs import (
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    perfect_nodes,
)
from erasure.audit.merkle.tree import MerkleTree, range_root, root_of
from erasure.audit.merkle.verification import (
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# Vectors copied from transparency-dev/merkle, rfc6962/rfc6962_test.go (TestRFC6962Hasher).
# They are the RFC 6962 hashes of the empty tree, an empty leaf, the leaf "L123456" and the
# node ("N123", "N456").
HASHER_VECTORS = [
    (EMPTY_ROOT, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (leaf_hash(b""), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    (leaf_hash(b"L123456"), "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
    (
        node_hash(b"N123", b"N456"),
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb",
    ),
]

# Vectors copied from transparency-dev/merkle, proof/verify_test.go (the reference tree of
# certificate-transparency's merkle tests): eight leaves, the root after each, and the
# published inclusion and consistency proofs. Leaf indices there are 1-based; ours are 0-based.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


INCLUSION_VECTORS = [  # (0-based leaf index, tree size, proof)
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

CONSISTENCY_VECTORS = [  # (size1, size2, proof)
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

TREE = MerkleTree([leaf_hash(leaf) for leaf in LEAVES])


@pytest.mark.parametrize(("got", "want"), HASHER_VECTORS)
def test_hashes_match_rfc6962_vectors(got: bytes, want: str) -> None:
    assert got.hex() == want


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published_vectors(size: int) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert TREE.root(size) == ROOTS[size - 1]
    assert root_of(hashes) == ROOTS[size - 1]
    frontier = Frontier()
    frontier.extend(hashes)
    assert frontier.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_published_vectors(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert TREE.inclusion_proof(index, size) == proof
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_published_vectors(
    size1: int, size2: int, proof: list[bytes]
) -> None:
    assert TREE.consistency_proof(size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


def _corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[int, int, bytes, list[bytes], bytes]]:
    """The probes of transparency-dev's corruptInclusionProof, each of which must fail."""
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, leaf_hash(b"WrongLeaf"), proof, root),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, proof, some),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, leaf, wrong, root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], some, *proof[1:]], root))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    for probe in _corrupt_inclusion(index, size, proof, ROOTS[size - 1], leaf_hash(LEAVES[index])):
        if (
            probe[0] == index
            and probe[1] == size
            and probe[3] == proof
            and probe[4] == ROOTS[size - 1]
            and probe[2] == leaf_hash(LEAVES[index])
        ):
            continue  # e.g. index ^ 2 == index for some vectors is not a corruption
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS[1:])
def test_corrupted_consistency_proofs_fail(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    wrong_root = hashlib.sha256(b"WrongRoot").digest()
    probes = [
        (size1 - 1, size2, proof, root1, root2),
        (size1 + 1, size2, proof, root1, root2),
        (size1 ^ 2, size2, proof, root1, root2),
        (size1, size2 * 2, proof, root1, root2),
        (size1, size2 // 2, proof, root1, root2),
        (size1, size2, proof, wrong_root, root2),
        (size1, size2, proof, root1, wrong_root),
        (size1, size2, proof, root2, root1),
        (size1, size2, [], root1, root2),
        (size1, size2, [*proof, b""], root1, root2),
        (size1, size2, [*proof, root1], root1, root2),
        (size1, size2, [*proof, root2], root1, root2),
        (size1, size2, [b"", *proof], root1, root2),
        (size1, size2, [root1, *proof], root1, root2),
        (size1, size2, [root2, *proof], root1, root2),
        (size1, size2, [proof[0], *proof], root1, root2),
        (size1, size2, proof[:-1], root1, root2),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((size1, size2, wrong, root1, root2))
    for probe in probes:
        if probe == (size1, size2, proof, root1, root2):
            continue
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_trivial_consistency_cases() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    verify_consistency(0, 0, [], a, a)
    verify_consistency(0, 1, [], a, b)
    verify_consistency(1, 1, [], b, b)
    for probe in [
        (1, 1, [], a, b),  # same size, two roots: a fork
        (1, 0, [], a, b),  # the log shrank
        (2, 1, [], a, b),
        (1, 2, [], a, b),  # a proof is needed
        (0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),
        (0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),
        (1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_single_leaf_inclusion() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(0, 1, h, [], h)
    for index, size, leaf, root in [(0, 1, b"", h), (0, 1, h, b""), (0, 0, h, h), (1, 1, h, h)]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, [], root)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _reference_root(hashes: list[bytes]) -> bytes:
    """MTH straight from the RFC 6962 recursive definition."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_reference_root(hashes[:k]), _reference_root(hashes[k:]))


ALL = _leaves(300)
BIG_TREE = MerkleTree(ALL)


@given(st.integers(0, 300))
def test_all_root_paths_agree_with_the_definition(size: int) -> None:
    hashes = ALL[:size]
    want = _reference_root(hashes)
    assert MerkleTree(hashes).root() == want
    assert BIG_TREE.root(size) == want
    frontier = Frontier()
    frontier.extend(hashes)
    assert frontier.root() == want
    assert Frontier.from_bytes(frontier.to_bytes()) == frontier
    assert Frontier.from_json(frontier.to_json()) == frontier


@given(st.data())
@settings(max_examples=300)
def test_inclusion_proofs_verify_and_any_flipped_bit_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300))
    index = data.draw(st.integers(0, size - 1))
    root = BIG_TREE.root(size)
    proof = BIG_TREE.inclusion_proof(index, size)
    verify_inclusion(index, size, ALL[index], proof, root)
    assert proof == inclusion_proof(index, size, lambda a, b: _reference_root(ALL[a:b]))
    # Flip one bit anywhere: in the leaf hash, a proof hash or the root.
    blob = bytearray(ALL[index] + b"".join(proof) + root)
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    parts = [bytes(blob[i : i + 32]) for i in range(0, len(blob), 32)]
    with pytest.raises(ProofError):
        verify_inclusion(index, size, parts[0], parts[1:-1], parts[-1])


@given(st.data())
@settings(max_examples=300)
def test_consistency_proofs_verify_and_any_flipped_bit_fails(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, 300))
    size1 = data.draw(st.integers(1, size2))
    root1, root2 = BIG_TREE.root(size1), BIG_TREE.root(size2)
    proof = BIG_TREE.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    assert proof == consistency_proof(size1, size2, lambda a, b: _reference_root(ALL[a:b]))
    blob = bytearray(root1 + root2 + b"".join(proof))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    parts = [bytes(blob[i : i + 32]) for i in range(0, len(blob), 32)]
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, parts[2:], parts[0], parts[1])


@given(st.integers(2, 300), st.data())
def test_a_different_log_is_never_consistent(size2: int, data: st.DataObject) -> None:
    size1 = data.draw(st.integers(1, size2 - 1))
    changed = data.draw(st.integers(0, size1 - 1))
    forked = list(ALL[:size2])
    forked[changed] = leaf_hash(b"forged")
    proof = MerkleTree(forked).consistency_proof(size1, size2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, BIG_TREE.root(size1), MerkleTree(forked).root())


def test_frontier_reports_completed_perfect_subtrees() -> None:
    frontier = Frontier()
    stored: dict[tuple[int, int], bytes] = {}
    for h in ALL[:100]:
        for level, index, value in frontier.append_nodes(h):
            stored[level, index] = value
    assert frontier.root() == BIG_TREE.root(100)
    assert len(stored) == 100 + 50 + 25 + 12 + 6 + 3 + 1
    for (level, index), value in stored.items():
        assert value == BIG_TREE.node(level, index)

    def node(level: int, index: int) -> bytes:
        return stored[level, index]

    proof = inclusion_proof(37, 100, lambda a, b: range_root(a, b, node))
    verify_inclusion(37, 100, ALL[37], proof, frontier.root())


@given(st.data())
def test_proof_ranges_name_every_node_a_proof_needs(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, 300))
    size1 = data.draw(st.integers(0, size2))
    index = data.draw(st.integers(0, size2 - 1))
    ranges = inclusion_proof_ranges(index, size2) + consistency_proof_ranges(size1, size2)
    wanted = {node for a, b in ranges for node in perfect_nodes(a, b)}
    # Only these nodes are fetched, as a database would after one query.
    fetched = {node: BIG_TREE.node(*node) for node in wanted}

    def subtree_root(a: int, b: int) -> bytes:
        return range_root(a, b, lambda level, i: fetched[level, i])

    assert inclusion_proof(index, size2, subtree_root) == BIG_TREE.inclusion_proof(index, size2)
    assert consistency_proof(size1, size2, subtree_root) == BIG_TREE.consistency_proof(size1, size2)
    assert len(wanted) <= 4 * size2.bit_length()


def test_frontier_rejects_bad_serialisations() -> None:
    frontier = Frontier()
    frontier.extend(ALL[:5])
    data = frontier.to_bytes()
    for bad in (data[:-1], data + b"\x00" * 32, b"\x00" * 7, (7).to_bytes(8, "big") + data[8:]):
        with pytest.raises(ValueError):
            Frontier.from_bytes(bad)
    with pytest.raises(ValueError):
        Frontier.from_json({"size": 4, "hashes": []})
    with pytest.raises(ValueError):
        frontier.append(b"short")


def test_pack_leaf_hashes_matches_leaf_hash() -> None:
    packed = pack_leaf_hashes(LEAVES)
    assert packed == b"".join(leaf_hash(leaf) for leaf in LEAVES)
    assert MerkleTree(packed).root() == ROOTS[-1]


def test_proof_generation_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError):
        BIG_TREE.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        BIG_TREE.consistency_proof(6, 5)
    with pytest.raises(ValueError):
        BIG_TREE.root(301)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(3, 2, ALL[0], [])
