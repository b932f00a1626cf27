"""Transitions shared by the pipeline's steps: claiming rows, settling a request's outcome when its
targets are final, alerts, and the pseudonyms that keep leaves free of personal data. Nothing here
commits.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.audit import leaves
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    ErasureRequest,
    RequestStatus,
    Target,
    TargetStatus,
)
from erasure.outbox import messages as outbox
from erasure.pipeline.models import Alert

UNSENT_TARGET_STATUSES = frozenset(
    {TargetStatus.PENDING, TargetStatus.BLOCKED_OPEN_SESSION, TargetStatus.BATCHED}
)
SENT_TARGET_STATUSES = frozenset({TargetStatus.REQUESTED, TargetStatus.IN_PROGRESS})
FINAL_TARGET_STATUSES = frozenset(
    {TargetStatus.DELETED, TargetStatus.FAILED, TargetStatus.WITHDRAWN}
)


def record_pseudonym(key: bytes, salesforce_id: str) -> str:
    """HMAC of a Salesforce record id (15-char form): leaves name records without naming them."""
    message = f"salesforce_record:{salesforce_id[:15]}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def enqueue_resolve(session: Session, request: ErasureRequest) -> None:
    outbox.enqueue(session, task_names.RESOLVE, [str(request.id), request.attempt])


def lock_request(
    session: Session, request_id: uuid.UUID, *, skip_locked: bool = False
) -> ErasureRequest | None:
    """The request row, locked for this transaction (None if absent, or locked and skip_locked)."""
    return session.scalar(
        select(ErasureRequest)
        .where(ErasureRequest.id == request_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )


def raise_alert(
    session: Session,
    *,
    kind: str,
    message: str,
    org_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
) -> Alert | None:
    """Open an alert unless the same one is already open. The message holds no personal data."""
    existing = session.scalar(
        select(Alert.id).where(
            Alert.kind == kind,
            Alert.resolved_at.is_(None),
            Alert.org_id.is_(None) if org_id is None else Alert.org_id == org_id,
            Alert.request_id.is_(None) if request_id is None else Alert.request_id == request_id,
        )
    )
    if existing is not None:
        return None
    alert = Alert(kind=kind, message=message, org_id=org_id, request_id=request_id)
    session.add(alert)
    return alert


#: The alert a request's deadline prediction raises; it ends when the risk does.
DEADLINE_AT_RISK = "deadline_at_risk"


def resolve_request_alerts(
    session: Session, request_id: uuid.UUID, *, kinds: tuple[str, ...], at: datetime
) -> None:
    """Close the request's open alerts of these kinds: their cause is gone (the deadline was
    extended, the request ended), so the dashboard must stop showing them."""
    session.execute(
        update(Alert)
        .where(
            Alert.request_id == request_id,
            Alert.kind.in_(kinds),
            Alert.resolved_at.is_(None),
        )
        .values(resolved_at=at)
    )


def move_request(
    session: Session,
    request: ErasureRequest,
    to: RequestStatus,
    *,
    at: datetime,
    kind: str,
    data: dict[str, leaves.LeafValue] | None = None,
) -> None:
    """Change a request's status with its leaf, in the caller's transaction."""
    previous = request.status
    request.status = to
    request.updated_at = at
    if to in TERMINAL_REQUEST_STATUSES:
        request.completed_at = at
        # An ended request is neither at risk nor predicted to finish.
        request.is_at_risk = False
        request.predicted_completion_at = None
        resolve_request_alerts(session, request.id, kinds=(DEADLINE_AT_RISK,), at=at)
    leaves.append(
        session,
        kind=kind,
        request_id=request.id,
        at=at,
        data={"from_status": previous.value, "to_status": to.value, **(data or {})},
    )


def settle_request(
    session: Session, request_id: uuid.UUID, *, at: datetime, skip_locked: bool = False
) -> ErasureRequest | None:
    """Move a request on from its targets' states: all sent -> confirming; all final -> completed
    or failed. Locks the request row, then reads its targets, so two transactions finishing its
    last targets cannot both miss (or both make) the completion. With `skip_locked`, a request
    another transaction holds is left alone (a later settle moves it on).
    """
    request = lock_request(session, request_id, skip_locked=skip_locked)
    if request is None or request.status in TERMINAL_REQUEST_STATUSES:
        return request
    if request.status not in (RequestStatus.DELETING, RequestStatus.CONFIRMING):
        return request
    targets = session.scalars(
        select(Target)
        .where(Target.request_id == request_id)
        .execution_options(populate_existing=True)
    ).all()
    counts = Counter(target.status for target in targets)
    if any(counts[status] for status in UNSENT_TARGET_STATUSES):
        return request
    if any(counts[status] for status in SENT_TARGET_STATUSES):
        if request.status is RequestStatus.DELETING:
            move_request(
                session, request, RequestStatus.CONFIRMING, at=at, kind="request.confirming"
            )
        return request
    summary: dict[str, leaves.LeafValue] = {
        "targets_deleted": counts[TargetStatus.DELETED],
        "targets_failed": counts[TargetStatus.FAILED],
        "targets_withdrawn": counts[TargetStatus.WITHDRAWN],
    }
    if counts[TargetStatus.FAILED]:
        request.outcome = (
            f"{counts[TargetStatus.FAILED]} of {len(targets)} record(s) could not be deleted; "
            "see the targets' failure reasons"
        )
        move_request(
            session, request, RequestStatus.FAILED, at=at, kind="request.failed", data=summary
        )
    else:
        request.outcome = (
            f"{counts[TargetStatus.DELETED]} Salesforce record(s) deleted and confirmed absent"
        )
        move_request(
            session, request, RequestStatus.COMPLETED, at=at, kind="request.completed", data=summary
        )
    return request
