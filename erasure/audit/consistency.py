"""Checking a bare checkpoint against an earlier one, with an RFC 9162 consistency proof.

An auditor who kept a checkpoint (size M) and fetches a newer one (size N) asks the log for the
proof that N extends M (`GET /v1/audit/consistency?first=M&second=N`, the document below) and
checks it offline: both signatures with the trusted key, one origin, M <= N, and the proof against
the two signed roots (RFC 9162 §2.1.4.2). The proof itself needs no trust: a wrong one fails.

The proof document, shared by the endpoint and the verifier (field names as RFC 6962's
get-sth-consistency)::

    {"first": M, "second": N, "consistency": ["<base64 of 32 bytes>", ...]}
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from erasure.audit.checkpoint import Checkpoint, VerifierKey, open_checkpoint
from erasure.audit.errors import NoteError, ProofError
from erasure.audit.merkle.hashing import HASH_SIZE
from erasure.audit.merkle.verification import verify_consistency
from erasure.audit.report import ExitCode, Finding, Report

#: A consistency proof has at most about 2 * log2(N) hashes; anything longer is not one.
MAX_PROOF_HASHES = 128
MAX_PROOF_BYTES = 64 * 1024


class ProofFormatError(ProofError):
    """The proof document is not the JSON described above."""


class ProofNeededError(ProofError):
    """Two checkpoints of different sizes cannot be compared without a proof document."""


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: tuple[bytes, ...]


def proof_document(first: int, second: int, proof: Sequence[bytes]) -> dict[str, object]:
    """The JSON document of a consistency proof."""
    return {
        "first": first,
        "second": second,
        "consistency": [base64.b64encode(node).decode("ascii") for node in proof],
    }


def _size(document: dict[str, object], name: str) -> int:
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofFormatError(f"{name!r} must be a tree size (a non-negative integer)")
    return value


def _hash(text: object) -> bytes:
    if not isinstance(text, str):
        raise ProofFormatError("each proof hash is a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofFormatError("a proof hash is not valid base64") from exc
    if len(raw) != HASH_SIZE:
        raise ProofFormatError(f"a proof hash is {len(raw)} bytes, not {HASH_SIZE}")
    return raw


def parse_proof(data: bytes) -> ConsistencyProof:
    """Read a proof document strictly; raises `ProofFormatError`."""
    if len(data) > MAX_PROOF_BYTES:
        raise ProofFormatError("the proof document is too large")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProofFormatError("the proof is not JSON") from exc
    if not isinstance(document, dict):
        raise ProofFormatError("the proof is not a JSON object")
    hashes = document.get("consistency")
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
        raise ProofFormatError("'consistency' must be a list of base64 hashes")
    return ConsistencyProof(
        _size(document, "first"), _size(document, "second"), tuple(_hash(h) for h in hashes)
    )


def verify_checkpoint(
    note: bytes,
    key: VerifierKey,
    *,
    since: bytes | None = None,
    proof: bytes | None = None,
) -> Report:
    """Verify a signed checkpoint and, with `since`, that it extends that earlier checkpoint.

    `proof` (a proof document) is needed when the two sizes differ: without it,
    `ProofNeededError` says which one to fetch.
    """
    report = Report(kind="checkpoint")
    try:
        new = open_checkpoint(note, key)
    except NoteError as exc:
        report.add(Finding("bad_checkpoint", str(exc), ExitCode.BAD_CHECKPOINT))
        return report
    report.tree_size, report.root_hash = new.size, new.root_hash
    report.checkpoint_sizes = [new.size]
    if since is None:
        return report
    try:
        old = open_checkpoint(since, key)
    except NoteError as exc:
        report.add(Finding("bad_since_checkpoint", f"--since: {exc}", ExitCode.BAD_CHECKPOINT))
        return report
    report.since_size = old.size
    if _comparable(report, old, new):
        _check_proof(report, old, new, proof)
    return report


def _comparable(report: Report, old: Checkpoint, new: Checkpoint) -> bool:
    if old.origin != new.origin:
        report.add(
            Finding(
                "since_other_log",
                f"the --since checkpoint is for log {old.origin!r}, this one for {new.origin!r}",
                ExitCode.INCONSISTENT,
            )
        )
        return False
    if old.size > new.size:
        report.add(
            Finding(
                "rollback",
                f"this checkpoint is at size {new.size}, but you hold a signed checkpoint at "
                f"size {old.size}: the log was rolled back (or this checkpoint is older)",
                ExitCode.INCONSISTENT,
                new.size,
            )
        )
        return False
    return True


def _check_proof(report: Report, old: Checkpoint, new: Checkpoint, proof: bytes | None) -> None:
    hashes: tuple[bytes, ...] = ()
    if old.size < new.size:
        if proof is None:
            raise ProofNeededError(
                f"the checkpoints are at sizes {old.size} and {new.size}: a consistency proof "
                f"is needed (GET /v1/audit/consistency?first={old.size}&second={new.size})"
            )
        try:
            parsed = parse_proof(proof)
        except ProofFormatError as exc:
            report.add(Finding("malformed_proof", str(exc), ExitCode.MALFORMED))
            return
        if (parsed.first, parsed.second) != (old.size, new.size):
            report.add(
                Finding(
                    "proof_mismatch",
                    f"the proof is between sizes {parsed.first} and {parsed.second}, the "
                    f"checkpoints are at {old.size} and {new.size}",
                    ExitCode.MALFORMED,
                )
            )
            return
        hashes = parsed.hashes
    try:
        verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    except ProofError as exc:
        report.add(
            Finding(
                "fork",
                f"this checkpoint does not extend the one at size {old.size}: the log was "
                f"forked or rewritten ({exc})",
                ExitCode.INCONSISTENT,
            )
        )
    else:
        report.details["consistency_proof"] = [h.hex() for h in hashes]


def looks_like_checkpoint(data: bytes) -> bool:
    """A cheap sniff: a signed note starts with a non-empty origin line and has a signature."""
    return b"\n\n\xe2\x80\x94 " in data[:65536] and not data.lstrip().startswith(b"{")
