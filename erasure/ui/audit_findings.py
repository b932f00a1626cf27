"""What a verification proves, in sentences an auditor can sign off on, instead of exit codes.

A certificate's facts (which request, which records were deleted and read back as absent) are
only stated when its signature verified: an unsigned or altered document proves nothing.
Consistency with the current tree is checked against the newest checkpoint this server signed,
with a consistency proof from its own tree (the same check `erasure audit verify --since` runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from erasure.audit import store
from erasure.audit.certificate import load_certificate
from erasure.audit.checkpoint import VerifierKey
from erasure.audit.consistency import proof_document, verify_checkpoint
from erasure.audit.errors import AuditError
from erasure.audit.report import Report

#: Findings after which the document's content cannot be taken at its word.
_UNTRUSTED = frozenset({"malformed_certificate", "bad_signature", "unknown_key", "bad_checkpoint"})


@dataclass(frozen=True)
class Statement:
    text: str
    ok: bool


def _targets(document: Mapping[str, object]) -> tuple[list[dict[str, object]], int]:
    """The targets deleted and read back as absent, and how many targets there are."""
    listed = document.get("targets")
    targets = [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
    gone = [t for t in targets if t.get("status") == "deleted" and t.get("read_back") == "absent"]
    return gone, len(targets)


def _request_sentence(request: Mapping[str, object]) -> str:
    completed = str(request.get("completed_at") or "")[:10] or "not recorded"
    return (
        f"It concerns erasure request {request.get('id')} ({str(request.get('regulation', '')).upper()}, "
        f"org {request.get('org')}), received {str(request.get('received_at', ''))[:10]}, due "
        f"{str(request.get('due_at', ''))[:10]}, completed {completed}, with the outcome "
        f"“{str(request.get('status', '')).replace('_', ' ')}”."
    )


def certificate_statements(report: Report, data: bytes) -> list[Statement]:
    """What the uploaded certificate proves (or why it proves nothing)."""
    codes = {finding.code for finding in report.errors}
    if codes & _UNTRUSTED:
        return [
            Statement(
                "Nothing in this document is proven: it is not a certificate signed by this "
                "log's key, or it was altered after signing.",
                False,
            )
        ]
    document = load_certificate(data)  # parsed already by the verifier: it loads
    request = document["request"]
    assert isinstance(request, dict)  # noqa: S101  # the verifier checked the shape
    said = [
        Statement("The certificate is signed by this log's key.", True),
        Statement(_request_sentence(request), True),
    ]
    gone, total = _targets(document)
    if gone:
        ids = ", ".join(str(t.get("salesforce_log_id") or t.get("id")) for t in gone)
        said.append(
            Statement(
                f"{len(gone)} of its {total} Salesforce record(s) were deleted and confirmed "
                f"absent when read back (Salesforce log ids: {ids}).",
                True,
            )
        )
    elif total == 0:
        said.append(
            Statement("No Salesforce record of the subject was found, so none was deleted.", True)
        )
    if len(gone) < total:
        said.append(Statement(f"{total - len(gone)} record(s) were not confirmed absent.", False))
    leaves = report.details.get("proven_leaves")
    proven = len(leaves) if isinstance(leaves, list) else 0
    if "bad_inclusion_proof" in codes or "no_leaves" in codes:
        said.append(Statement("Some of its audit events are not proven to be in the log.", False))
    else:
        said.append(
            Statement(
                f"All {proven} of the request's audit events are proven to be in the log as "
                f"signed at size {report.tree_size}.",
                True,
            )
        )
    return said


def consistency_statement(
    session: Session, report: Report, data: bytes, key: VerifierKey
) -> Statement | None:
    """Whether the log as it is now extends the checkpoint the certificate was proven against."""
    current = store.latest_checkpoint(session)
    if current is None or report.tree_size is None or not report.ok:
        return None
    note = json.loads(data).get("checkpoint")
    if current.size < report.tree_size:
        return Statement(
            f"The current log (size {current.size}) is smaller than the certificate's checkpoint "
            f"(size {report.tree_size}): the log was rolled back, or the certificate is from another log.",
            False,
        )
    proof = proof_document(
        report.tree_size,
        current.size,
        store.consistency_proof(session, report.tree_size, current.size),
    )
    try:
        check = verify_checkpoint(
            current.note.encode(), key, since=str(note).encode(), proof=json.dumps(proof).encode()
        )
    except (AuditError, ValueError) as exc:
        return Statement(f"Consistency with the current log could not be checked: {exc}.", False)
    if check.ok:
        return Statement(
            f"The current log (size {current.size}, signed "
            f"{current.created_at.strftime('%Y-%m-%d %H:%M UTC')}) extends the certificate's "
            f"checkpoint (size {report.tree_size}): nothing proven then has been removed or rewritten since.",
            True,
        )
    return Statement(
        "The current log does not extend the certificate's checkpoint: "
        + "; ".join(f.message for f in check.errors),
        False,
    )


def log_statements(report: Report) -> list[Statement]:
    """What verifying the whole exported log proves."""
    if not report.ok:
        return [
            Statement(f.message[:1].upper() + f.message[1:] + ".", False) for f in report.errors
        ] + (
            [Statement(f"The first leaf that does not match is #{report.first_bad_leaf}.", False)]
            if report.first_bad_leaf is not None
            else []
        )
    sizes = report.checkpoint_sizes
    return [
        Statement(
            f"All {report.leaf_count} audit events were read back and hash to the tree of size "
            f"{report.tree_size}.",
            True,
        ),
        Statement(
            f"Each of the {len(sizes)} signed checkpoint(s) is signed by this log's key and "
            "matches the tree at its size: no event was altered, removed or inserted after signing.",
            True,
        ),
    ]
