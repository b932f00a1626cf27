"""The verifier's per-leaf work on every core gives exactly the single-process scan: same leaf
hashes in file order, same count, same non-canonical leaves (numbered across ranges), whatever
the file's shape (empty lines, an unterminated last line, ranges smaller than a line); and a
tampered bundle gets the same report, first bad leaf included, from both."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from erasure.audit import bundle as files
from erasure.audit import leaf_scan
from erasure.audit.merkle.hashing import leaf_hash
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.verify import verify_bundle

from .support import SignedLog


def write_leaves(directory: Path, data: bytes) -> Path:
    directory.mkdir()
    (directory / files.LEAVES_FILE).write_bytes(data)
    return directory


def lines(n: int) -> list[bytes]:
    return [b'{"i":%d,"kind":"x","pad":"%s"}' % (i, b"y" * (i % 37)) for i in range(n)]


@pytest.mark.parametrize(
    "shape",
    ["plain", "bad leaves", "empty lines", "unterminated", "one long line", "empty file"],
)
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_scan_equals_the_single_process_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str, workers: int
) -> None:
    leaves = lines(5000)
    if shape == "bad leaves":
        for at in (0, 1, 2499, 2500, 4999):
            leaves[at] = b'{"kind":"x","i":%d}' % at  # keys out of order
        leaves[1234] = b'{"i":1.0}'
    if shape == "empty lines":
        leaves[10:10] = [b"", b""]
        leaves.append(b"")
    if shape == "one long line":
        leaves = [b'{"a":"' + b"z" * 200_000 + b'"}']
    if shape == "empty file":
        leaves = []
    data = b"".join(leaf + b"\n" for leaf in leaves)
    if shape == "unterminated":
        data = data[:-1]
    path = write_leaves(tmp_path / "bundle", data)
    single = leaf_scan.scan_leaves(files.iter_leaf_chunks(path))
    monkeypatch.setattr(leaf_scan, "PARALLEL_FROM_BYTES", 0)
    parallel = leaf_scan.scan_leaf_file(path, workers=workers)
    assert parallel == single
    assert parallel.count == len(leaves)
    if shape == "bad leaves":
        assert parallel.non_canonical == (0, 1, 1234, 2499, 2500, 4999)


def test_ranges_cover_the_file_at_line_starts(tmp_path: Path) -> None:
    data = b"".join(leaf + b"\n" for leaf in lines(777))
    path = write_leaves(tmp_path / "bundle", data)
    ranges = files.leaf_ranges(path, 16)
    assert len(ranges) > 8
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(ranges))
    assert all(data[end - 1 : end] == b"\n" for _, end in ranges)


TAMPERINGS = {
    # A valid, canonical edit: only the signed roots catch it, and leaf-hashes.bin names it.
    "edited": lambda leaves: [
        *leaves[:4321],
        leaves[4321].replace(b'"v":1', b'"v":2'),
        *leaves[4322:],
    ],
    # Not canonical (keys reordered) in two ranges, and one leaf dropped further on.
    "reordered keys, deleted": lambda leaves: [
        *leaves[:17],
        b'{"v":1,"kind":"x"}',
        *leaves[18:7000],
        b'{"v":1,"kind":"y"}',
        *leaves[7001:9000],
        *leaves[9001:],
    ],
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_parallel_verification_reports_what_the_serial_one_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_10k: Path,
    log_10k: SignedLog,
    tampering: str,
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_10k, bundle)
    leaves = TAMPERINGS[tampering](log_10k.leaves)
    (bundle / files.LEAVES_FILE).write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    key = log_10k.key.verifier()

    monkeypatch.setattr(leaf_scan, "usable_cores", lambda: 1)
    serial = verify_bundle(bundle, key).to_json()
    monkeypatch.setattr(leaf_scan, "usable_cores", lambda: 2)
    monkeypatch.setattr(leaf_scan, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(files, "leaf_ranges", _counting(files.leaf_ranges, calls := []))
    parallel = verify_bundle(bundle, key).to_json()

    assert calls, "the parallel path was not taken"
    assert parallel == serial
    assert not serial["ok"]
    first_bad = {"edited": 4321, "reordered keys, deleted": 17}[tampering]
    assert serial["first_bad_leaf"] == first_bad


def _counting(function: Callable[..., Any], calls: list[object]) -> Callable[..., Any]:
    """`function`, recording each call: proves the parallel path (which cuts ranges) ran."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return function(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4095, 4096, 4097, 5000, 3 * 4096 + 17, 70_001])
def test_the_tree_built_on_several_cores_is_the_tree(count: int) -> None:
    hashes = b"".join(leaf_hash(b"%d" % i) for i in range(count))
    with ProcessPoolExecutor(2) as pool:
        tree = leaf_scan._parallel_tree(pool, hashes, 2)
    expected = MerkleTree(hashes)
    assert tree.size == expected.size == count
    assert tree._levels == expected._levels  # every node, not only the roots
    for size in {0, count // 3, count // 2, count - 1, count} - {-1}:
        assert tree.root(size) == expected.root(size)


def test_a_parallel_scan_brings_its_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_leaves(tmp_path / "bundle", b"".join(leaf + b"\n" for leaf in lines(9000)))
    monkeypatch.setattr(leaf_scan, "PARALLEL_FROM_BYTES", 0)
    scan = leaf_scan.scan_leaf_file(path, workers=2)
    assert scan.tree is not None
    assert scan.tree._levels == MerkleTree(scan.leaf_hashes)._levels
