"""Tamper suite: every edit, deletion, reordering, insertion and truncation of a 10,000-leaf
log is detected, the first bad leaf is named, and the untouched log raises no alarm.

Most mutations are verified in process on in-memory leaves: the same stages `verify_bundle`
runs (`check_leaves`, `authentic_reference`, `leaf_findings`), fed a `LeafScan` that reuses the
hashes of unchanged leaves, so a thousand mutations per kind fit in well under a minute. A
sample of each kind then goes through real files and `verify_bundle`, and rollbacks and forks
through `--since` consistency proofs.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure.audit.bundle import LEAVES_FILE, write_bundle
from erasure.audit.canonical import is_canonical
from erasure.audit.checkpoint import Checkpoint, open_checkpoint
from erasure.audit.leaf_scan import LeafScan
from erasure.audit.merkle.hashing import leaf_hash, pack_leaf_hashes
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.report import ExitCode, Report
from erasure.audit.verify import (
    authentic_reference,
    check_leaves,
    check_since,
    leaf_findings,
    verify_bundle,
)

from .support import SignedLog, make_leaf, sign_checkpoints

MUTATIONS_PER_KIND = 1000

Mutation = tuple[list[bytes], int]  # mutated leaves, expected first bad leaf


class InMemoryVerifier:
    """Runs the verifier's stages on a mutated copy of the log, reusing unchanged leaves."""

    def __init__(self, log: SignedLog) -> None:
        self.checkpoints = [open_checkpoint(note, log.key.verifier()) for note in log.notes]
        self.hashes = {leaf: leaf_hash(leaf) for leaf in log.leaves}
        # What leaf-hashes.bin holds in the exported bundle.
        self.reference = authentic_reference(log.tree, self.checkpoints)
        assert self.reference is not None

    def verify(self, leaves: list[bytes]) -> Report:
        known = self.hashes
        hashes = [known[leaf] if leaf in known else leaf_hash(leaf) for leaf in leaves]
        bad = tuple(
            i for i, leaf in enumerate(leaves) if leaf not in known and not is_canonical(leaf)
        )
        scan = LeafScan(b"".join(hashes), len(leaves), bad)
        report = Report(kind="bundle", leaf_count=scan.count)
        leaf_findings(report, scan, check_leaves(scan, self.checkpoints), self.reference)
        return report


@pytest.fixture(scope="module")
def verifier(log_10k: SignedLog) -> InMemoryVerifier:
    return InMemoryVerifier(log_10k)


def _first_difference(a: list[bytes], b: list[bytes]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


# --- the mutations ----------------------------------------------------------------------------

_FIELD = re.compile(rb'"([a-z_]+)":("[^"]*"|-?[0-9]+|true|false|null|\[|\{)')


def field_spans(leaf: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) of every key, every value and the structural bytes of a leaf."""
    spans = []
    for match in _FIELD.finditer(leaf):
        name = match.group(1).decode()
        spans.append((f"key:{name}", match.start(1), match.end(1)))
        spans.append((f"value:{name}", match.start(2), match.end(2)))
    structural = [i for i, byte in enumerate(leaf) if byte in b'{}[],:"']
    spans.extend((f"structure:{i}", i, i + 1) for i in structural)
    return spans


def flip_mutations(leaves: list[bytes], rng: random.Random) -> list[tuple[Mutation, str]]:
    names = sorted({name for name, _, _ in field_spans(leaves[0]) if not name.startswith("s")})
    names.append("structure")
    out = []
    for m in range(MUTATIONS_PER_KIND + len(names)):
        index = rng.randrange(len(leaves))
        spans = field_spans(leaves[index])
        wanted = names[m % len(names)]
        choices = [s for s in spans if s[0] == wanted or s[0].startswith(wanted + ":")]
        _, start, end = rng.choice(choices)
        position = rng.randrange(start, end)
        mutated = bytearray(leaves[index])
        mutated[position] ^= rng.randrange(1, 256)
        copy = list(leaves)
        copy[index] = bytes(mutated)
        out.append(((copy, index), wanted))
    return out


VALID_EDITS: list[tuple[bytes, bytes]] = [
    (b'"status":"Succeeded"', b'"status":"Failed"'),
    (b'"read_back":true', b'"read_back":false'),
    (b'"kind":"completed"', b'"kind":"cancelled"'),
    (b'"v":1', b'"v":2'),
]


def valid_edit_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    """Edits that keep the leaf valid, canonical JSON: only the signed root can catch them."""
    out = []
    while len(out) < 200:
        index = rng.randrange(len(leaves))
        old, new = rng.choice(VALID_EDITS)
        if old in leaves[index]:
            copy = list(leaves)
            copy[index] = leaves[index].replace(old, new)
            assert is_canonical(copy[index])
            out.append((copy, index))
    return out


def delete_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    out = []
    for _ in range(MUTATIONS_PER_KIND):
        index = rng.randrange(len(leaves))
        count = rng.choice((1, 1, 1, 2, 10))
        out.append((leaves[:index] + leaves[index + count :], index))
    return out


def swap_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    out = []
    for m in range(MUTATIONS_PER_KIND):
        i = rng.randrange(len(leaves) - 1)
        j = i + 1 if m % 2 else rng.randrange(i + 1, len(leaves))
        copy = list(leaves)
        copy[i], copy[j] = copy[j], copy[i]
        out.append((copy, i))
    return out


def insert_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    out = []
    for m in range(MUTATIONS_PER_KIND):
        index = rng.randrange(len(leaves) + 1)
        if m % 3 == 0:
            forged = make_leaf(len(leaves) + m)  # a well-formed leaf that was never logged
        elif m % 3 == 1:
            forged = leaves[rng.randrange(len(leaves))]  # a replayed real leaf
        else:
            forged = b'{"v":1}'
        copy = [*leaves[:index], forged, *leaves[index:]]
        out.append((copy, _first_difference(leaves, copy)))
    return out


def truncate_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    out = []
    for m in range(MUTATIONS_PER_KIND):
        keep = rng.randrange(len(leaves))
        copy = leaves[:keep]
        if m % 2:  # cut inside a line: the last leaf is left partial
            copy.append(leaves[keep][: rng.randrange(1, len(leaves[keep]))])
        out.append((copy, keep))
    return out


def reorder_mutations(leaves: list[bytes], rng: random.Random) -> list[Mutation]:
    out = []
    for _ in range(200):
        start = rng.randrange(len(leaves) - 2)
        end = rng.randrange(start + 2, min(len(leaves), start + 50) + 1)
        copy = leaves[:start] + leaves[start:end][::-1] + leaves[end:]
        out.append((copy, start))
    return out


KINDS: dict[str, Callable[[list[bytes], random.Random], list[Mutation]]] = {
    "valid_edit": valid_edit_mutations,
    "delete": delete_mutations,
    "swap": swap_mutations,
    "insert": insert_mutations,
    "truncate": truncate_mutations,
    "reorder": reorder_mutations,
}


def test_untouched_log_raises_no_alarm(verifier: InMemoryVerifier, log_10k: SignedLog) -> None:
    report = verifier.verify(list(log_10k.leaves))
    assert report.ok, report.findings
    assert report.findings == []


def test_every_byte_flip_in_every_field_is_detected(
    verifier: InMemoryVerifier, log_10k: SignedLog
) -> None:
    rng = random.Random(4)
    mutations = flip_mutations(log_10k.leaves, rng)
    assert len(mutations) > MUTATIONS_PER_KIND
    fields = {field for _, field in mutations}
    assert {"key:subject", "value:sf_log_id", "value:at", "structure"} <= fields
    for (leaves, expected), field in mutations:
        report = verifier.verify(leaves)
        assert not report.ok, field
        assert report.exit_code is ExitCode.TAMPERED
        assert report.first_bad_leaf == expected, (field, report.findings)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_mutation_is_detected_and_localised(
    verifier: InMemoryVerifier, log_10k: SignedLog, kind: str
) -> None:
    rng = random.Random(kind)
    mutations = KINDS[kind](log_10k.leaves, rng)
    for leaves, expected in mutations:
        assert expected == _first_difference(log_10k.leaves, leaves)
        report = verifier.verify(leaves)
        assert not report.ok
        assert report.exit_code is ExitCode.TAMPERED
        assert report.first_bad_leaf == expected, (kind, report.findings)


# --- through real files -----------------------------------------------------------------------


def _rewrite(bundle: Path, tmp_path: Path, leaves: list[bytes]) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / LEAVES_FILE).write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    return copy


@pytest.mark.parametrize("kind", ["flip", *sorted(KINDS)])
def test_file_mutations_are_detected_by_verify_bundle(
    bundle_10k: Path, log_10k: SignedLog, tmp_path: Path, kind: str
) -> None:
    rng = random.Random(f"files-{kind}")
    if kind == "flip":
        mutations = [m for m, _ in flip_mutations(log_10k.leaves, rng)]
    else:
        mutations = KINDS[kind](log_10k.leaves, rng)
    for n, (leaves, expected) in enumerate(rng.sample(mutations, 3)):
        path = _rewrite(bundle_10k, tmp_path / str(n), leaves)
        report = verify_bundle(path, log_10k.key.verifier())
        assert report.exit_code is ExitCode.TAMPERED
        assert report.first_bad_leaf == expected


def test_untouched_bundle_verifies(bundle_10k: Path, log_10k: SignedLog) -> None:
    report = verify_bundle(bundle_10k, log_10k.key.verifier())
    assert report.ok, report.findings
    assert report.leaf_count == 10_000
    assert report.tree_size == 10_000


def test_tampering_with_leaves_and_hashes_still_detected(
    bundle_10k: Path, log_10k: SignedLog, tmp_path: Path
) -> None:
    leaves = list(log_10k.leaves)
    leaves[6500] = leaves[6500].replace(b"Succeeded", b"Failed")
    path = _rewrite(bundle_10k, tmp_path, leaves)
    # The forger also rewrites leaf-hashes.bin to match: it no longer reproduces the signed
    # roots, so the verifier refuses to trust it and reports a range instead of a leaf.
    (path / "leaf-hashes.bin").write_bytes(pack_leaf_hashes(leaves))
    report = verify_bundle(path, log_10k.key.verifier())
    assert report.exit_code is ExitCode.TAMPERED
    assert report.first_bad_leaf is None
    assert report.first_bad_range == (6001, 7000)


def test_unterminated_last_line_is_reported(
    bundle_10k: Path, log_10k: SignedLog, tmp_path: Path
) -> None:
    path = _rewrite(bundle_10k, tmp_path, log_10k.leaves)
    data = (path / LEAVES_FILE).read_bytes()
    (path / LEAVES_FILE).write_bytes(data[:-1])
    report = verify_bundle(path, log_10k.key.verifier())
    assert report.exit_code is ExitCode.MALFORMED
    assert report.first_bad_leaf == 9999


# --- rollback and fork, through consistency proofs --------------------------------------------


def test_growth_since_every_earlier_checkpoint_is_accepted(
    bundle_10k: Path, log_10k: SignedLog
) -> None:
    for note in log_10k.notes:
        report = verify_bundle(bundle_10k, log_10k.key.verifier(), since=note)
        assert report.ok, report.findings


def test_rollback_is_detected(log_10k: SignedLog, tmp_path: Path) -> None:
    # The database is restored from a backup taken at 6001 leaves; the exporter signs a fresh
    # checkpoint there. An auditor holding the 9000 checkpoint sees the log shrink.
    restored = log_10k.leaves[:6001]
    notes = [n for n, s in zip(log_10k.notes, log_10k.sizes, strict=True) if s <= 6001]
    path = tmp_path / "restored"
    write_bundle(path, leaves=restored, checkpoints=notes, verifier_key=log_10k.key.verifier())
    assert verify_bundle(path, log_10k.key.verifier()).ok  # alone, it looks fine
    for note, size in zip(log_10k.notes, log_10k.sizes, strict=True):
        report = verify_bundle(path, log_10k.key.verifier(), since=note)
        if size <= 6001:
            assert report.ok
        else:
            assert report.exit_code is ExitCode.INCONSISTENT
            assert [f.code for f in report.errors] == ["rollback"]


def test_forks_are_detected(log_10k: SignedLog) -> None:
    rng = random.Random("fork")
    old_checkpoints = [open_checkpoint(n, log_10k.key.verifier()) for n in log_10k.notes]
    hashes = [log_10k.tree.leaf_hash(i) for i in range(10_000)]
    cases = 0
    for _ in range(300):
        old = rng.choice(old_checkpoints)
        rewritten = rng.randrange(old.size)  # history before the old checkpoint changes
        forked_hashes = list(hashes)
        forked_hashes[rewritten] = leaf_hash(b'{"forged":true}')
        tree = MerkleTree(forked_hashes)
        newest = Checkpoint(old.origin, tree.size, tree.root())  # re-signed by the operator
        report = Report(kind="bundle")
        check_since(report, old, newest, tree)
        assert [f.code for f in report.errors] == ["fork"], (old.size, rewritten)
        cases += 1
        # The honest log is consistent with the same old checkpoint.
        honest = Report(kind="bundle")
        check_since(honest, old, old_checkpoints[-1], log_10k.tree)
        assert honest.ok
    assert cases == 300


def test_forked_bundle_is_detected_with_since(log_10k: SignedLog, tmp_path: Path) -> None:
    leaves = list(log_10k.leaves)
    leaves[123] = make_leaf(999_999)
    tree = MerkleTree(pack_leaf_hashes(leaves))
    notes = sign_checkpoints(tree, [5000, 10_000], log_10k.key)
    path = tmp_path / "forked"
    write_bundle(path, leaves=leaves, checkpoints=notes, verifier_key=log_10k.key.verifier())
    assert verify_bundle(path, log_10k.key.verifier()).ok
    report = verify_bundle(path, log_10k.key.verifier(), since=log_10k.notes[3])  # size 1024
    assert report.exit_code is ExitCode.INCONSISTENT
    assert [f.code for f in report.errors] == ["fork"]
