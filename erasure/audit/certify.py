"""Issuing a certificate of erasure for a finished request, from the database.

The certificate names the subject only by pseudonyms, each target by our id, its Salesforce log id,
final status and read-back result, each wait on a legal hold (when it waited on one), and carries
every leaf of the request with its inclusion proof against a signed checkpoint, so an auditor
verifies it offline with the public key alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from erasure.audit import store
from erasure.audit.certificate import ProvenLeaf, build_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.leaves import timestamp
from erasure.audit.models import AuditCheckpoint, AuditLeaf
from erasure.core.models import ErasureRequest, ErasureScope, RequestStatus, TargetStatus
from erasure.errors import InvalidTransition, NotFound, NotReady

CERTIFIABLE = frozenset({RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA})


def certificate_for(
    session: Session,
    request_id: uuid.UUID,
    *,
    signing_key: SigningKey,
    api_key_id: uuid.UUID | None = None,
) -> dict[str, object]:
    """The signed certificate of a completed request.

    Raises NotFound, InvalidTransition (the request has not completed) or NotReady (its last
    leaves are not yet covered by a signed checkpoint: retry in a few seconds).
    """
    query = (
        select(ErasureRequest)
        .where(ErasureRequest.id == request_id)
        .options(
            selectinload(ErasureRequest.targets),
            selectinload(ErasureRequest.identifiers),
            selectinload(ErasureRequest.org),
        )
    )
    if api_key_id is not None:
        query = query.where(ErasureRequest.api_key_id == api_key_id)
    erasure_request = session.scalar(query)
    if erasure_request is None:
        raise NotFound("no such erasure request")
    if erasure_request.status not in CERTIFIABLE:
        raise InvalidTransition(
            f"a certificate is issued once the request has completed; it is {erasure_request.status.value}"
        )
    leaves = store.leaves_of_request(session, request_id)
    proven, checkpoint_note = prove_leaves(session, leaves)
    summary: dict[str, object] = {
        "id": str(erasure_request.id),
        "org": erasure_request.org.name,
        "regulation": erasure_request.regulation.value,
        "status": erasure_request.status.value,
        "received_at": timestamp(erasure_request.received_at),
        "due_at": timestamp(erasure_request.due_at),
        "completed_at": timestamp(erasure_request.completed_at)
        if erasure_request.completed_at
        else None,
        "reference": {
            "system": erasure_request.reference_system,
            "id": erasure_request.reference_id,
        },
        "subject": sorted(
            (
                {"kind": i.kind.value, "pseudonym": i.blind_index.hex()}
                for i in erasure_request.identifiers
            ),
            key=lambda entry: (entry["kind"], entry["pseudonym"]),
        ),
    }
    if erasure_request.scope is not ErasureScope.SUBJECT:  # conversations only: says so
        summary["scope"] = erasure_request.scope.value
    facts = _target_facts(leaf.leaf for leaf in leaves)
    waits = _hold_waits(leaf.leaf for leaf in leaves)
    if waits:  # only a request that waited on a legal hold says so
        summary["legal_holds"] = waits
    targets: list[dict[str, object]] = []
    for target in sorted(erasure_request.targets, key=lambda t: str(t.id)):
        known = facts.get(str(target.id), {})
        default_read_back = "absent" if target.status is TargetStatus.DELETED else "not_confirmed"
        targets.append(
            {
                "id": str(target.id),
                "kind": target.kind.value,
                # The record's pseudonym, as the leaves name it: a record deleted once for
                # several requests has the same one (and the same log id) in each certificate.
                "record": known.get("record"),
                "delete_call": str(target.delete_call_id) if target.delete_call_id else None,
                "salesforce_log_id": target.log_id,
                "log_status": target.log_status,
                "status": target.status.value,
                "read_back": known.get("read_back") or default_read_back,
            }
        )
    return build_certificate(
        request=summary,
        targets=targets,
        leaves=proven,
        checkpoint_note=checkpoint_note,
        signing_key=signing_key,
        issued_at=datetime.now(UTC),
    )


def prove_leaves(session: Session, leaves: Sequence[AuditLeaf]) -> tuple[list[ProvenLeaf], str]:
    """Each leaf with its inclusion proof against the newest signed checkpoint covering them
    all, and that checkpoint's note. Raises NotReady while one is unsequenced or uncovered."""
    if any(leaf.leaf_index is None for leaf in leaves):
        raise NotReady("the request's last audit events are still being sequenced")
    needed = max((leaf.leaf_index or 0) for leaf in leaves) + 1 if leaves else 1
    checkpoint = session.scalar(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.size >= needed)
        .order_by(AuditCheckpoint.size.desc())
        .limit(1)
    )
    if checkpoint is None:
        raise NotReady("no signed checkpoint covers the request's audit events yet")
    proven = [
        ProvenLeaf(
            leaf.leaf_index,
            leaf.leaf,
            store.inclusion_proof(session, leaf.leaf_index, checkpoint.size),
        )
        for leaf in leaves
        if leaf.leaf_index is not None
    ]
    return proven, checkpoint.note


def _target_facts(leaf_bytes: Iterable[bytes]) -> dict[str, dict[str, str]]:
    """Per target id, what the request's leaves say of it: the record's pseudonym (from the
    `request.resolved` leaf, or any later one naming it) and the read-back of its final leaf.
    From the leaves, not the targets table: they hold the same facts after retention."""
    facts: dict[str, dict[str, str]] = {}
    for raw in leaf_bytes:
        leaf = json.loads(raw)
        data = leaf.get("data") if isinstance(leaf, dict) else None
        if not isinstance(data, dict):
            continue
        listed = data.get("targets")
        entries: list[object] = listed if isinstance(listed, list) else [data]
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
                continue
            known = facts.setdefault(entry["target"], {})
            if isinstance(entry.get("record"), str):
                known["record"] = entry["record"]
            if isinstance(entry.get("read_back"), str):
                known["read_back"] = entry["read_back"]
    return facts


#: The leaves that end a request's wait on legal holds.
_HOLD_ENDS = frozenset({"request.resumed", "request.hold_overridden"})


def _hold_waits(leaf_bytes: Iterable[bytes]) -> list[dict[str, object]]:
    """Each time the request waited on legal holds, from its leaves: when it was held, by which
    holds, and when and how it went on (`hold_ended`, or `override` by an approver)."""
    waits: list[dict[str, object]] = []
    for raw in leaf_bytes:
        leaf = json.loads(raw)
        data = leaf.get("data") if isinstance(leaf, dict) else None
        if not isinstance(data, dict):
            continue
        if leaf.get("kind") == "request.held":
            holds = data.get("holds")
            waits.append(
                {
                    "held_at": leaf.get("at"),
                    "holds": holds if isinstance(holds, list) else [],
                    "resumed_at": None,
                    "how": None,
                }
            )
        elif leaf.get("kind") in _HOLD_ENDS and waits and waits[-1]["resumed_at"] is None:
            waits[-1]["resumed_at"] = leaf.get("at")
            waits[-1]["how"] = data.get("how")
    return waits
