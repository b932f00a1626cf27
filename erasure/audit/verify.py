"""The offline verifier: checks an evidence bundle with nothing but the log's public key.

What a clean result proves: every checkpoint in the bundle is signed by the trusted key; the
leaves, hashed per RFC 9162, produce exactly the root each checkpoint signs at its size; every
leaf is RFC 8785 canonical JSON; and, with `since`, the log at the bundle's newest checkpoint
extends the earlier checkpoint the auditor already held (so it was not rolled back or forked).

How the first bad leaf is named: signed roots say *that* the leaves changed and below which
checkpoint; to say *where*, the verifier compares the recomputed leaf hashes with the bundle's
`leaf-hashes.bin`, but only after that file itself reproduces every signed root. If it does
not (it was altered too, or is missing), the verifier reports the narrowest range between
checkpoints that holds the first bad leaf instead of guessing.

The pipeline is split so each stage can be used alone: the per-leaf work (hash and canonical
check, on every core) is `erasure.audit.leaf_scan`; here are `check_leaves` (tree and roots),
`locate_first_bad_leaf`, `check_since`, and `verify_bundle` which reads the files and runs
them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from erasure.audit import bundle as files
from erasure.audit.checkpoint import Checkpoint, VerifierKey, open_checkpoint
from erasure.audit.errors import BundleError, NoteError, ProofError
from erasure.audit.leaf_scan import LeafScan, scan_leaf_file
from erasure.audit.merkle.hashing import HASH_SIZE
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.merkle.verification import verify_consistency
from erasure.audit.report import ExitCode, Finding, Report

# --- stage 2: the tree against the signed roots -----------------------------------------------


@dataclass
class LeafCheck:
    """How the recomputed tree compares with the signed checkpoints."""

    tree: MerkleTree
    verified_sizes: list[int]
    first_failing: Checkpoint | None  # smallest checkpoint the leaves do not reproduce
    failing_count: int
    unattested_from: int | None  # leaves at and after this index have no checkpoint

    @property
    def ok(self) -> bool:
        return self.first_failing is None and self.unattested_from is None


def check_leaves(scan: LeafScan | MerkleTree, checkpoints: Sequence[Checkpoint]) -> LeafCheck:
    """Recompute the root at every checkpoint's size and compare. Needs >= 1 checkpoint."""
    if isinstance(scan, MerkleTree):
        tree = scan
    else:
        tree = scan.tree if scan.tree is not None else MerkleTree(scan.leaf_hashes)
    ordered = sorted(checkpoints, key=lambda c: c.size)
    verified: list[int] = []
    first_failing: Checkpoint | None = None
    failing = 0
    for checkpoint in ordered:
        if checkpoint.size <= tree.size and tree.root(checkpoint.size) == checkpoint.root_hash:
            verified.append(checkpoint.size)
        else:
            failing += 1
            first_failing = first_failing or checkpoint
    newest = ordered[-1].size
    unattested = newest if tree.size > newest else None
    return LeafCheck(tree, verified, first_failing, failing, unattested)


def authentic_reference(
    reference_hashes: bytes | MerkleTree | None, checkpoints: Sequence[Checkpoint]
) -> MerkleTree | None:
    """The reference leaf hashes as a tree, if and only if they reproduce every signed root."""
    if reference_hashes is None:
        return None
    if isinstance(reference_hashes, MerkleTree):
        reference = reference_hashes
    elif len(reference_hashes) % HASH_SIZE:
        return None
    else:
        reference = MerkleTree(reference_hashes)
    newest = max(c.size for c in checkpoints)
    if reference.size != newest:
        return None
    for checkpoint in checkpoints:
        if reference.root(checkpoint.size) != checkpoint.root_hash:
            return None
    return reference


def locate_first_bad_leaf(
    check: LeafCheck, reference: MerkleTree | None
) -> tuple[int | None, tuple[int, int]]:
    """The index of the first leaf that differs from the signed log, and a range holding it.

    With an authentic reference the index is exact: the first position where the recomputed
    leaf hash differs, or where one of the two sequences ends (a truncation names the first
    missing leaf; extra leaves at the end name the first unattested one). Without it, the
    index is None and the range runs from the last checkpoint that still verifies to the
    first one that does not (or to the first unattested leaf).
    """
    tree = check.tree
    if reference is not None:
        index = _first_difference(tree.leaf_hashes, reference.leaf_hashes) // HASH_SIZE
        return index, (index, index + 1)
    if check.first_failing is None:
        # Every checkpoint verifies, so leaves [0, newest) are the signed ones: the first
        # leaf past the newest checkpoint is exactly the first bad one.
        index = check.unattested_from if check.unattested_from is not None else tree.size
        return index, (index, index + 1)
    size = check.first_failing.size
    low = max((s for s in check.verified_sizes if s < size), default=0)
    # A truncated bundle may have lost every leaf after the last one it holds, so the first
    # missing leaf (index == tree.size) is still a candidate.
    high = size if size <= tree.size else tree.size + 1
    if high - low == 1:
        return low, (low, high)
    return None, (low, high)


def _first_difference(a: bytes, b: bytes) -> int:
    """Offset of the first differing byte, or the shorter length when one is a prefix."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    # Halving with slice comparisons: O(n) total work done in C, not a Python byte loop.
    lo, hi = 0, n
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return hi


def leaf_findings(
    report: Report, scan: LeafScan, check: LeafCheck, reference: MerkleTree | None
) -> None:
    """Turn a leaf check (and the reference, if authentic) into findings on `report`."""
    for position in scan.non_canonical[:10]:
        report.add(
            Finding(
                "non_canonical_leaf",
                f"leaf {position} is not RFC 8785 canonical JSON",
                ExitCode.TAMPERED,
                position,
            )
        )
    if len(scan.non_canonical) > 10:
        report.add(
            Finding(
                "non_canonical_leaf",
                f"{len(scan.non_canonical) - 10} more leaves are not canonical JSON",
                ExitCode.TAMPERED,
            )
        )
    if check.ok:
        return
    index, (low, high) = locate_first_bad_leaf(check, reference)
    report.first_bad_range = (low, high)
    reasons = []
    if check.first_failing is not None:
        size = check.first_failing.size
        if size > scan.count:
            reasons.append(f"the bundle has {scan.count} leaves but a checkpoint covers {size}")
        else:
            reasons.append(f"the leaves do not reproduce the signed root at size {size}")
        if check.failing_count > 1:
            reasons.append(f"{check.failing_count} checkpoints fail in all")
    if check.unattested_from is not None:
        reasons.append(
            f"{scan.count - check.unattested_from} leaves after {check.unattested_from} "
            "are covered by no checkpoint"
        )
    if index is not None:
        what = _describe(index, scan.count, reference)
        message = f"first bad leaf: {index} ({what}); " + "; ".join(reasons)
    else:
        message = (
            f"first bad leaf is in [{low}, {high}) (leaf-hashes.bin is missing or does not "
            "match the signed roots, so it cannot be pinned down further); " + "; ".join(reasons)
        )
    report.add(Finding("leaves_do_not_match", message, ExitCode.TAMPERED, index))


def _describe(index: int, count: int, reference: MerkleTree | None) -> str:
    if reference is None:
        return "differs"
    if index >= count:
        return "missing: the bundle ends early"
    if index >= reference.size:
        return "not in the signed log: extra leaf"
    return "differs from the signed log"


# --- stage 3: consistency with an earlier checkpoint ------------------------------------------


def check_since(
    report: Report, old: Checkpoint, newest: Checkpoint, tree: MerkleTree | None
) -> None:
    """Prove from the bundle's leaves that `newest` extends `old` (RFC 9162 §2.1.4)."""
    report.since_size = old.size
    if old.origin != newest.origin:
        report.add(
            Finding(
                "since_other_log",
                f"the --since checkpoint is for log {old.origin!r}, the bundle for "
                f"{newest.origin!r}",
                ExitCode.INCONSISTENT,
            )
        )
        return
    if old.size > newest.size:
        report.add(
            Finding(
                "rollback",
                f"the bundle's newest checkpoint is at size {newest.size}, but you hold a "
                f"signed checkpoint at size {old.size}: the log was rolled back "
                "(or this export predates your checkpoint)",
                ExitCode.INCONSISTENT,
                newest.size,
            )
        )
        return
    if tree is None or tree.size < newest.size:
        report.add(
            Finding(
                "since_unchecked",
                "consistency with the --since checkpoint could not be checked: the bundle's "
                "leaves do not reproduce its newest checkpoint",
                ExitCode.INCONSISTENT,
                warning=True,  # the leaf findings already fail the run
            )
        )
        return
    proof = tree.consistency_proof(old.size, newest.size)
    try:
        verify_consistency(old.size, newest.size, proof, old.root_hash, newest.root_hash)
    except ProofError as exc:
        report.add(
            Finding(
                "fork",
                f"the log at size {old.size} is not the one your checkpoint signed: it was "
                f"forked or rewritten ({exc})",
                ExitCode.INCONSISTENT,
            )
        )
    else:
        report.details["consistency_proof"] = [h.hex() for h in proof]


# --- the whole bundle -------------------------------------------------------------------------


def open_checkpoints(
    report: Report, notes: Mapping[str, bytes], key: VerifierKey
) -> list[Checkpoint]:
    """Verify each note's signature and its file name; bad ones become findings."""
    verified: dict[int, Checkpoint] = {}
    for name, note in notes.items():
        try:
            checkpoint = open_checkpoint(note, key)
        except NoteError as exc:
            report.add(Finding("bad_checkpoint", f"{name}: {exc}", ExitCode.BAD_CHECKPOINT))
            continue
        if name != files.checkpoint_filename(checkpoint.size):
            report.add(
                Finding(
                    "bad_checkpoint",
                    f"{name} holds the checkpoint for size {checkpoint.size}",
                    ExitCode.BAD_CHECKPOINT,
                )
            )
            continue
        verified[checkpoint.size] = checkpoint
    origins = {checkpoint.origin for checkpoint in verified.values()}
    if len(origins) > 1:
        report.add(
            Finding(
                "bad_checkpoint",
                f"checkpoints from several logs: {sorted(origins)}",
                ExitCode.BAD_CHECKPOINT,
            )
        )
    return [verified[size] for size in sorted(verified)]


def verify_bundle(path: Path, key: VerifierKey, *, since: bytes | str | None = None) -> Report:
    """Verify the evidence bundle at `path` against the trusted `key`."""
    report = Report(kind="bundle", path=str(path))
    try:
        manifest = files.read_manifest(path)
    except BundleError as exc:
        report.add(Finding("malformed_bundle", str(exc), ExitCode.MALFORMED))
        return report
    _check_manifest_files(report, path, manifest, key)

    checkpoints = open_checkpoints(report, files.read_checkpoint_notes(path), key)
    report.checkpoint_sizes = [c.size for c in checkpoints]
    if not checkpoints:
        report.add(
            Finding(
                "no_checkpoint",
                "no checkpoint signed by the trusted key: nothing to verify the leaves against",
                ExitCode.BAD_CHECKPOINT,
            )
        )
        return report
    newest = checkpoints[-1]
    report.tree_size, report.root_hash = newest.size, newest.root_hash

    try:
        scan = scan_leaf_file(path)
        terminated = files.leaves_end_with_newline(path)
    except OSError as exc:
        report.add(Finding("malformed_bundle", f"cannot read leaves: {exc}", ExitCode.MALFORMED))
        return report
    report.leaf_count = scan.count
    if not terminated:
        report.add(
            Finding(
                "unterminated_leaf",
                f"leaf {scan.count - 1} is not followed by a newline",
                ExitCode.MALFORMED,
                scan.count - 1,
            )
        )
    check = check_leaves(scan, checkpoints)
    reference = None
    if not check.ok:
        # Only now is the reference worth reading: it is needed to name the first bad leaf.
        reference = authentic_reference(files.read_leaf_hashes(path), checkpoints)
    leaf_findings(report, scan, check, reference)

    if since is not None:
        try:
            old = open_checkpoint(since, key)
        except NoteError as exc:
            report.add(Finding("bad_since_checkpoint", f"--since: {exc}", ExitCode.BAD_CHECKPOINT))
        else:
            verified_newest = newest.size in check.verified_sizes
            tree = check.tree if verified_newest else reference
            check_since(report, old, newest, tree)
    return report


def _check_manifest_files(
    report: Report, path: Path, manifest: Mapping[str, object], key: VerifierKey
) -> None:
    """Cross-check the (unsigned) manifest and key copy: failures hint at a partial bundle."""
    for name in files.manifest_checkpoints(manifest):
        if not (path / name).is_file():
            report.add(
                Finding(
                    "missing_checkpoint",
                    f"the manifest lists {name} but the bundle does not contain it",
                    ExitCode.MALFORMED,
                )
            )
    try:
        bundled_key = (path / files.PUBLIC_KEY_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        bundled_key = ""
    if bundled_key != str(key):
        report.add(
            Finding(
                "other_public_key",
                "the bundle's public-key.txt differs from the trusted key given; "
                "only the trusted key was used",
                ExitCode.OK,
                warning=True,
            )
        )
