"""Legal holds stop erasure before deletion (GDPR Art. 17(3)(e)).

A request a hold covers (its org has an org-wide hold, or one of its identifiers has the pseudonym
of a subject hold) is resolved as usual (finding records deletes nothing), then moves to `on_hold`
instead of `deleting`: none of its records is planned into a delete call, for any request, while
it waits (`record_held`). It resumes when no hold covers it any more (released, or past its end:
the sweep's pass records the expiry) or when an approver overrides the holds with a reason; an
override exempts it from the holds placed before it, not from later ones.

Who decides coverage races with who places a hold: placing or releasing a hold takes an org-wide
advisory lock, and every check of coverage (resolve, retry, resume) takes it shared, so a request
moving to `deleting` either is seen by a hold placed at the same time or sees that hold. Placing a
hold also locks the unsent targets of the records it stops, so a dispatcher either planned their
call before the hold (then it is on its way) or skips them.

Every step is an audit leaf without personal data: hold ids, pseudonyms, SHA-256 of reasons.
Nothing here commits, except `expire_due` (a tick of its own).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, any_, exists, func, or_, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from erasure.audit import leaves
from erasure.core.models import (
    ErasureRequest,
    RequestStatus,
    SubjectIdentifier,
    Target,
    TargetStatus,
)
from erasure.identifiers import Sealed
from erasure.pipeline.context import Pipeline
from erasure.pipeline.models import Alert, HoldScope, HoldWait, LegalHold
from erasure.pipeline.states import lock_request, move_request, raise_alert, settle_request

ON_HOLD_ALERT = "request_on_hold"
HOLD_ENDED = "hold_ended"
OVERRIDE = "override"
CANCELLED = "cancelled"
#: How many held requests one pass looks at (the next pass takes the rest).
RESUME_BATCH = 500


def reason_context(hold_id: uuid.UUID) -> str:
    """What a hold's sealed reason is bound to (a ciphertext copied to another hold fails)."""
    return f"hold-reason:{hold_id}"


def override_context(wait_id: uuid.UUID) -> str:
    return f"hold-override:{wait_id}"


def _lock_key(org_id: uuid.UUID) -> int:
    # pg_advisory_xact_lock takes a signed 64-bit key.
    return int.from_bytes(
        hashlib.sha256(b"legal-holds:" + org_id.bytes).digest()[:8], "big", signed=True
    )


def lock_holds(session: Session, org_id: uuid.UUID) -> None:
    """Exclusive, for placing or releasing a hold of the org (until the transaction ends)."""
    session.execute(select(func.pg_advisory_xact_lock(_lock_key(org_id))))


def share_holds(session: Session, org_id: uuid.UUID) -> None:
    """Shared, for deciding whether a request of the org is covered (until the transaction ends)."""
    session.execute(select(func.pg_advisory_xact_lock_shared(_lock_key(org_id))))


def is_active(at: datetime) -> ColumnElement[bool]:
    return (LegalHold.released_at.is_(None)) & (LegalHold.ends_at > at)


def covering(session: Session, request: ErasureRequest, at: datetime) -> list[uuid.UUID]:
    """The active holds that cover `request` now, oldest first: org-wide ones of its org and
    subject ones matching any of its identifiers, less those placed before its last override."""
    identifiers = select(SubjectIdentifier.blind_index).where(
        SubjectIdentifier.request_id == request.id
    )
    overridden = (
        select(func.max(HoldWait.ended_at))
        .where(HoldWait.request_id == request.id, HoldWait.ended_how == OVERRIDE)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(LegalHold.id)
            .where(
                LegalHold.org_id == request.org_id,
                is_active(at),
                or_(LegalHold.scope == HoldScope.ORG, LegalHold.blind_index.in_(identifiers)),
                or_(overridden.is_(None), LegalHold.created_at > overridden),
            )
            .order_by(LegalHold.created_at, LegalHold.id)
        )
    )


def record_held(target: type[Target] = Target) -> ColumnElement[bool]:
    """SQL: some request that waits on a hold has a target for `target`'s record. The scheduler
    never plans such a record, whichever request's target it would send.

    Uncorrelated, so Postgres reads the held requests' records once and looks each target up
    in that set: as a correlated EXISTS it was run once per target, each run reading every
    target of the org (0.8 s for one dispatcher read at 4,500 pending targets)."""
    held = aliased(Target)
    held_records = (
        select(held.org_id, held.kind, held.salesforce_id)
        .join(ErasureRequest, ErasureRequest.id == held.request_id)
        .where(ErasureRequest.status == RequestStatus.ON_HOLD, held.salesforce_id.is_not(None))
    )
    return and_(
        target.salesforce_id.is_not(None),
        tuple_(target.org_id, target.kind, target.salesforce_id).in_(held_records),
    )


def any_held(session: Session, org_id: uuid.UUID) -> bool:
    """Whether any request of the org waits on a hold: the scheduler adds `record_held` to its
    scans only then, so an org with no hold pays nothing for the check."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    ErasureRequest.status == RequestStatus.ON_HOLD,
                    ErasureRequest.org_id == org_id,
                )
            )
        )
    )


def _freeze_records(session: Session, request: ErasureRequest) -> None:
    """Lock the unsent targets of the request's records (its own and other requests'): a
    dispatcher planning one of them finishes first, or skips it (it locks with SKIP LOCKED)."""
    records = select(Target.salesforce_id).where(
        Target.request_id == request.id, Target.salesforce_id.is_not(None)
    )
    session.execute(
        select(Target.id)
        .where(
            Target.org_id == request.org_id,
            Target.salesforce_id.in_(records),
            Target.status.in_((TargetStatus.PENDING, TargetStatus.BLOCKED_OPEN_SESSION)),
        )
        .order_by(Target.id)
        .with_for_update()
    )


def hold(
    session: Session,
    request: ErasureRequest,
    hold_ids: Sequence[uuid.UUID],
    *,
    at: datetime,
    by: str | None = None,
) -> None:
    """deleting -> on_hold (the request is locked by the caller), with its leaf and an alert."""
    _freeze_records(session, request)
    move_request(
        session,
        request,
        RequestStatus.ON_HOLD,
        at=at,
        kind="request.held",
        data={"holds": [str(h) for h in hold_ids], "by": by},
    )
    session.add(HoldWait(request_id=request.id, hold_ids=list(hold_ids), held_at=at))
    raise_alert(
        session,
        kind=ON_HOLD_ALERT,
        message=f"erasure stopped before deletion by {len(hold_ids)} legal hold(s); it resumes "
        "when they end or an approver overrides them",
        org_id=request.org_id,
        request_id=request.id,
    )


def hold_if_covered(
    session: Session, request: ErasureRequest, *, at: datetime, by: str | None = None
) -> bool:
    """Put a request that has just reached `deleting` on hold if a hold covers it; True if so."""
    share_holds(session, request.org_id)
    hold_ids = covering(session, request, at)
    if not hold_ids:
        return False
    hold(session, request, hold_ids, at=at, by=by)
    return True


def open_wait(session: Session, request_id: uuid.UUID) -> HoldWait | None:
    return session.scalar(
        select(HoldWait)
        .where(HoldWait.request_id == request_id, HoldWait.ended_at.is_(None))
        .with_for_update()
    )


def end_wait(
    session: Session,
    request: ErasureRequest,
    *,
    at: datetime,
    how: str,
    by: str | None = None,
    reason: Sealed | None = None,
) -> HoldWait | None:
    """Close the request's open wait and its alert (the request is locked by the caller)."""
    wait = open_wait(session, request.id)
    if wait is not None:
        wait.ended_at, wait.ended_how, wait.ended_by = at, how, by
        if reason is not None:
            wait.override_reason_ciphertext = reason.ciphertext
            wait.override_reason_key_id = reason.key_id
    session.execute(
        update(Alert)
        .where(
            Alert.request_id == request.id,
            Alert.kind == ON_HOLD_ALERT,
            Alert.resolved_at.is_(None),
        )
        .values(resolved_at=at)
    )
    return wait


def resume(
    session: Session,
    request: ErasureRequest,
    *,
    at: datetime,
    how: str,
    by: str | None = None,
    reason: Sealed | None = None,
    reason_sha256: str | None = None,
) -> None:
    """on_hold -> deleting (the request is locked by the caller): its unsent targets are planned
    again, and it settles at once if everything it waited for was already done."""
    wait = end_wait(session, request, at=at, how=how, by=by, reason=reason)
    data: dict[str, leaves.LeafValue] = {
        "holds": [str(h) for h in (wait.hold_ids if wait else [])],
        "how": how,
        "by": by,
    }
    if reason_sha256 is not None:
        data["reason_sha256"] = reason_sha256
    move_request(
        session,
        request,
        RequestStatus.DELETING,
        at=at,
        kind="request.hold_overridden" if how == OVERRIDE else "request.resumed",
        data=data,
    )
    session.flush()
    settle_request(session, request.id, at=at)


def resume_free(session: Session, *, at: datetime, org_id: uuid.UUID | None = None) -> int:
    """Resume held requests that waited on a hold that has ended (released, or past its end) and
    that no other hold covers; a request another hold still covers keeps waiting on that one.
    Returns how many resumed."""
    ended = exists(
        select(LegalHold.id).where(
            LegalHold.id == any_(HoldWait.hold_ids),
            or_(LegalHold.released_at.is_not(None), LegalHold.ends_at <= at),
        )
    )
    query = (
        select(HoldWait.request_id, ErasureRequest.org_id)
        .join(ErasureRequest, ErasureRequest.id == HoldWait.request_id)
        .where(HoldWait.ended_at.is_(None), ErasureRequest.status == RequestStatus.ON_HOLD, ended)
        .order_by(HoldWait.held_at)
        .limit(RESUME_BATCH)
    )
    if org_id is not None:
        query = query.where(ErasureRequest.org_id == org_id)
    candidates = list(session.execute(query))
    # The holds' lock before any request row, as placing a hold takes them: never in a cycle.
    for candidate_org in sorted({org for _, org in candidates}):
        share_holds(session, candidate_org)
    resumed = 0
    for request_id, _ in candidates:
        request = lock_request(session, request_id, skip_locked=True)
        if request is None or request.status is not RequestStatus.ON_HOLD:
            continue
        still = covering(session, request, at)
        if still:
            wait = open_wait(session, request.id)
            if wait is not None:
                wait.hold_ids = still
            continue
        resume(session, request, at=at, how=HOLD_ENDED)
        resumed += 1
    return resumed


def expire_due(ctx: Pipeline) -> int:
    """Record holds whose end has passed (one `hold.expired` leaf each) and resume what they
    held. Run by the sweep tick; returns how many requests resumed."""
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        expired = session.scalars(
            select(LegalHold)
            .where(
                LegalHold.released_at.is_(None),
                LegalHold.expired_at.is_(None),
                LegalHold.ends_at <= now,
            )
            .order_by(LegalHold.ends_at, LegalHold.id)
            .limit(RESUME_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for legal_hold in expired:
            legal_hold.expired_at = now
            leaves.append(
                session,
                kind="hold.expired",
                request_id=None,
                at=now,
                data={"hold": str(legal_hold.id), "ends_at": leaves.timestamp(legal_hold.ends_at)},
            )
        return resume_free(session, at=now)
