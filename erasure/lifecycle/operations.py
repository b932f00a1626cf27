"""What people and systems do to a request once it is in: cancel it, approve it, retry what
failed, extend its deadline with a reason. Every edge (the API, the console, OpenDSR) calls these.
Each is one transition with its audit leaf and, where work follows, an outbox row. Nothing here
commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from erasure import deadlines
from erasure.audit import leaves
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    ErasureRequest,
    RequestStatus,
    Target,
    TargetStatus,
)
from erasure.errors import InvalidTransition, NotFound
from erasure.free_text import cancelled_outcome, notes_context, seal_cancel_reason
from erasure.identifiers import Sealed, Vault
from erasure.pipeline.holds import CANCELLED, end_wait, hold_if_covered
from erasure.pipeline.models import Alert
from erasure.pipeline.states import (
    UNSENT_TARGET_STATUSES,
    enqueue_resolve,
    lock_request,
    move_request,
)
from erasure.pipeline.sweep import PARKED

# Targets in these states have not reached Salesforce yet: a cancel can still withdraw them.
# (A `batched` target whose call was on the wire is recorded as sent by the pipeline.)
WITHDRAWABLE_TARGET_STATUSES = frozenset(
    {TargetStatus.PENDING, TargetStatus.BLOCKED_OPEN_SESSION, TargetStatus.BATCHED}
)
#: Before targets exist, a retry re-runs the resolve step.
_RESOLVE_STATES = (RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.RESOLVING)


def _locked(
    session: Session, request_id: uuid.UUID, api_key_id: uuid.UUID | None
) -> ErasureRequest:
    request = lock_request(session, request_id)
    if request is None or (api_key_id is not None and request.api_key_id != api_key_id):
        raise NotFound("no such erasure request")
    return request


def approve(
    session: Session, request_id: uuid.UUID, *, by: str | None, at: datetime
) -> ErasureRequest:
    """awaiting_approval -> approved, and the resolve step is queued. Its linked duplicates that
    await approval are approved with it (each with its own leaf naming this request). `by` names
    who approved (`api-key:<prefix>` or `user:<id>`), for the audit log. Raises InvalidTransition.
    """
    request = _locked(session, request_id, None)
    if request.status is not RequestStatus.AWAITING_APPROVAL:
        raise InvalidTransition(f"the request is {request.status.value}, not awaiting approval")
    move_request(
        session,
        request,
        RequestStatus.APPROVED,
        at=at,
        kind="request.approved",
        data={"by": by},
    )
    enqueue_resolve(session, request)
    duplicates = session.scalars(
        select(ErasureRequest)
        .where(
            ErasureRequest.duplicate_of_id == request.id,
            ErasureRequest.status == RequestStatus.AWAITING_APPROVAL,
        )
        .order_by(ErasureRequest.id)
        .with_for_update()
    ).all()
    for duplicate in duplicates:
        move_request(
            session,
            duplicate,
            RequestStatus.APPROVED,
            at=at,
            kind="request.approved",
            data={"by": by, "with": str(request.id)},
        )
        enqueue_resolve(session, duplicate)
    return request


def retry(
    session: Session,
    request_id: uuid.UUID,
    *,
    target_ids: Collection[uuid.UUID] = (),
    api_key_id: uuid.UUID | None = None,
    by: str | None = None,
    at: datetime,
) -> ErasureRequest:
    """Send failed targets again (all of them, or those named), or re-run a stalled or parked
    resolve. The request returns to `deleting`. Raises NotFound, InvalidTransition."""
    request = _locked(session, request_id, api_key_id)
    if request.status in (RequestStatus.CANCELLED, RequestStatus.REJECTED):
        raise InvalidTransition(f"the request is {request.status.value}")
    if request.status is RequestStatus.ON_HOLD:
        raise InvalidTransition("the request waits on a legal hold: an approver may override it")
    session.execute(
        update(Alert)
        .where(Alert.request_id == request.id, Alert.kind == PARKED, Alert.resolved_at.is_(None))
        .values(resolved_at=at)
    )
    if request.status in _RESOLVE_STATES:
        move_request(
            session,
            request,
            request.status,
            at=at,
            kind="request.retried",
            data={"targets": [], "by": by},
        )
        enqueue_resolve(session, request)
        return request
    query = select(Target).where(
        Target.request_id == request.id, Target.status == TargetStatus.FAILED
    )
    if target_ids:
        query = query.where(Target.id.in_(list(target_ids)))
    targets = list(session.scalars(query.order_by(Target.id).with_for_update()))
    if target_ids and len(targets) != len(set(target_ids)):
        raise InvalidTransition("only failed targets of this request can be retried")
    if not targets:
        raise InvalidTransition("the request has no failed target to retry")
    for target in targets:
        # log_id stays until a new log replaces it, so reconciliation never mistakes the old
        # log for the new call's.
        target.status = TargetStatus.PENDING
        target.delete_call_id = None
        target.leads_deletion = False
        target.failure_reason = None
        target.next_check_at = None
        target.updated_at = at
    request.outcome = None
    request.completed_at = None
    move_request(
        session,
        request,
        RequestStatus.DELETING,
        at=at,
        kind="request.retried",
        data={"targets": [str(t.id) for t in targets], "by": by},
    )
    session.flush()
    hold_if_covered(session, request, at=at, by=by)  # a hold placed since stops it again
    return request


def extend(
    session: Session,
    request_id: uuid.UUID,
    *,
    reason: str,
    until: datetime | None,
    vault: Vault,
    api_key_id: uuid.UUID | None = None,
    by: str | None = None,
    at: datetime,
) -> ErasureRequest:
    """Move the deadline later, within what the regulation allows from the original deadline
    (GDPR: two more months; CCPA: 45 more days). The reason is kept encrypted with the request's
    notes (free text may name people); the leaf holds its SHA-256. Raises InvalidTransition."""
    request = _locked(session, request_id, api_key_id)
    if request.status in TERMINAL_REQUEST_STATUSES:
        raise InvalidTransition(f"the request is already {request.status.value}")
    original = deadlines.due_at(request.regulation, request.received_at)
    limit = deadlines.extended_due_at(request.regulation, original)
    if limit is None:
        raise InvalidTransition(f"{request.regulation.value} allows no extension")
    new_due = until or limit
    if new_due > limit:
        raise InvalidTransition(
            f"{request.regulation.value} allows an extension to {limit.isoformat()} at most"
        )
    if new_due <= request.due_at:
        raise InvalidTransition("the new deadline must be later than the current one")
    previous = request.due_at
    request.due_at = new_due
    session.execute(
        update(Target)
        .where(Target.request_id == request.id, Target.status.in_(UNSENT_TARGET_STATUSES))
        .values(due_at=new_due)
    )
    notes = ""
    if request.notes_ciphertext is not None and request.notes_key_id is not None:
        notes = vault.open(
            Sealed(request.notes_key_id, request.notes_ciphertext),
            context=notes_context(request.id),
        )
    sealed = vault.seal(
        f"{notes}\n[deadline extended {at.date().isoformat()}] {reason}".strip(),
        context=notes_context(request.id),
    )
    request.notes_ciphertext, request.notes_key_id = sealed.ciphertext, sealed.key_id
    request.is_at_risk = False  # the predictor re-evaluates against the new deadline
    move_request(
        session,
        request,
        request.status,
        at=at,
        kind="request.extended",
        data={
            "from_due_at": previous.isoformat(),
            "to_due_at": new_due.isoformat(),
            "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
            "by": by,
        },
    )
    return request


def cancel(
    session: Session,
    request_id: uuid.UUID,
    *,
    reason: str,
    vault: Vault,
    api_key_id: uuid.UUID | None = None,
    by: str | None = None,
) -> ErasureRequest:
    """Cancel an open request. Targets not yet sent are withdrawn; deletions already sent to
    Salesforce cannot be recalled, and the outcome says so. The reason is free text (it may name
    the subject): it is sealed, and the outcome is a fixed phrase. Raises NotFound,
    InvalidTransition.
    """
    erasure_request = session.scalar(
        select(ErasureRequest)
        .where(ErasureRequest.id == request_id)
        .options(selectinload(ErasureRequest.targets))
        .with_for_update()
    )
    if erasure_request is None or (
        api_key_id is not None and erasure_request.api_key_id != api_key_id
    ):
        raise NotFound("no such erasure request")
    if erasure_request.status in TERMINAL_REQUEST_STATUSES:
        raise InvalidTransition(f"the request is already {erasure_request.status.value}")
    withdrawn = 0
    already_sent = 0
    for target in erasure_request.targets:
        if target.status in WITHDRAWABLE_TARGET_STATUSES:
            target.status = TargetStatus.WITHDRAWN
            withdrawn += 1
        elif target.status in {
            TargetStatus.REQUESTED,
            TargetStatus.IN_PROGRESS,
            TargetStatus.DELETED,
        }:
            already_sent += 1
    previous = erasure_request.status
    now = datetime.now(UTC)
    if previous is RequestStatus.ON_HOLD:
        end_wait(session, erasure_request, at=now, how=CANCELLED, by=by)
    erasure_request.status = RequestStatus.CANCELLED
    erasure_request.attempt += 1  # fences off any worker still holding the old attempt
    erasure_request.completed_at = now
    erasure_request.outcome = cancelled_outcome(already_sent)
    seal_cancel_reason(vault, erasure_request, reason)
    leaves.append(
        session,
        kind="request.cancelled",
        request_id=erasure_request.id,
        at=now,
        data={
            "from_status": previous.value,
            "targets_withdrawn": withdrawn,
            "deletions_not_stoppable": already_sent,
            "by": by,
        },
    )
    _promote_duplicates(session, erasure_request, at=now, by=by)
    session.flush()
    return erasure_request


def _promote_duplicates(
    session: Session, cancelled: ErasureRequest, *, at: datetime, by: str | None
) -> None:
    """The open requests linked to a cancelled one go on at once, under a new root: the oldest
    becomes the group's first request (the others are linked to it, so an approval of it
    approves them too), and each one still before its resolve step is published again, rather
    than waiting for the stall sweep (its earlier message may have met its row locked, or found
    a primary that was waiting for an approval that will now never come)."""
    if cancelled.duplicate_of_id is not None:
        return  # not a root: the group's root is still there
    linked = session.scalars(
        select(ErasureRequest)
        .where(
            ErasureRequest.duplicate_of_id == cancelled.id,
            ErasureRequest.status.not_in(TERMINAL_REQUEST_STATUSES),
        )
        .order_by(ErasureRequest.created_at, ErasureRequest.id)
        .with_for_update()
    ).all()
    if not linked:
        return
    root, *others = linked
    root.duplicate_of_id = None
    for other in others:
        other.duplicate_of_id = root.id
    for request in linked:
        leaves.append(
            session,
            kind="request.promoted",
            request_id=request.id,
            at=at,
            data={
                "cancelled": str(cancelled.id),
                "duplicate_of": None if request is root else str(root.id),
                "by": by,
            },
        )
        if request.status in (RequestStatus.RECEIVED, RequestStatus.APPROVED):
            request.updated_at = at
            enqueue_resolve(session, request)
