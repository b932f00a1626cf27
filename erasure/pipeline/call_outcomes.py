"""What happens to a delete call after it was sent: every way it can end is recorded against its
row and its targets (202 -> `requested` with log ids; 429 -> the credential pauses; 404 -> the org
pauses; 412 -> back to pending; 400 -> failed; 5xx/timeout -> `ambiguous`), one function per
ending. An ambiguous or orphaned call is settled by `reconciliation`, with the helpers here.
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from erasure.audit import leaves
from erasure.core.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    Org,
    RequestStatus,
    Target,
    TargetStatus,
)
from erasure.pipeline.context import Pipeline
from erasure.pipeline.states import lock_request, raise_alert, record_pseudonym, settle_request
from erasure.salesforce.errors import (
    AmbiguousDeleteError,
    BadRequestError,
    EngagementApiNotFoundError,
    OpenSessionError,
    RateLimitedError,
    SalesforceError,
)
from erasure.salesforce.models import ApiLog, DeleteAccepted

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_S = 60.0
MALFORMED_BATCH = "malformed_delete_batch"
#: Targets a call carried: `withdrawn` ones were cancelled while the call was on the wire.
IN_CALL = (TargetStatus.BATCHED, TargetStatus.WITHDRAWN)


def load_org(session: Session, org_id: uuid.UUID) -> Org | None:
    """The org with its credentials, re-read (another worker may have paused it)."""
    return session.scalar(
        select(Org)
        .where(Org.id == org_id)
        .options(selectinload(Org.credentials))
        .execution_options(populate_existing=True)
    )


def log_per_request(
    session: Session,
    targets: Sequence[Target],
    *,
    kind: str,
    at: datetime,
    data: dict[str, leaves.LeafValue] | None = None,
) -> None:
    """One audit leaf per request for what happened to a group of its targets."""
    by_request: dict[uuid.UUID, list[Target]] = defaultdict(list)
    for target in targets:
        by_request[target.request_id].append(target)
    for request_id, group in by_request.items():
        leaves.append(
            session,
            kind=kind,
            request_id=request_id,
            at=at,
            data={**(data or {}), "targets": [str(t.id) for t in group]},
        )


def mark_requested(
    ctx: Pipeline, target: Target, log: ApiLog, now: datetime
) -> dict[str, leaves.LeafValue]:
    """The call reached Salesforce for `target`: it is `requested` under `log` (its leaf entry)."""
    was_withdrawn = target.status is TargetStatus.WITHDRAWN
    target.status = TargetStatus.REQUESTED
    target.log_id = log.id
    target.log_status = log.status
    target.failure_reason = None
    target.next_check_at = now + timedelta(seconds=ctx.tunables.poll_min_s)
    target.updated_at = now
    return {
        "target": str(target.id),
        "record": record_pseudonym(ctx.pseudonym_key, target.salesforce_id or ""),
        "log_id": log.id,
        "log_status": log.status,
        "sent_before_cancel": was_withdrawn,
    }


def back_to_pending(
    ctx: Pipeline,
    session: Session,
    targets: Sequence[Target],
    now: datetime,
    *,
    reason: str,
    call: DeleteCall,
) -> list[Target]:
    """The call certainly did not delete these targets' records: plan them again. Returns them."""
    for target in targets:
        # The record is no longer being deleted by this call: another target may lead anew.
        target.leads_deletion = False
    # A target withdrawn by a cancel while its call was out stays withdrawn.
    targets = [t for t in targets if t.status is TargetStatus.BATCHED]
    for target in targets:
        target.status = TargetStatus.PENDING
        target.delete_call_id = None
        target.next_check_at = None
        target.updated_at = now
    log_per_request(
        session,
        targets,
        kind="targets.returned",
        at=now,
        data={"delete_call": str(call.id), "reason": reason},
    )
    return targets


def hold_malformed(
    ctx: Pipeline,
    session: Session,
    targets: Sequence[Target],
    now: datetime,
    *,
    org_id: uuid.UUID,
    reason: str,
) -> None:
    """A batch that should never have been formed (a malformed or doubled id) is a bug in
    erasure, not a verdict on the records: their targets stay pending, wait
    `malformed_batch_hold_s` (no hot loop), and a person is alerted. They never fail for it."""
    until = now + timedelta(seconds=ctx.tunables.malformed_batch_hold_s)
    for target in targets:
        target.next_check_at = until
        target.updated_at = now
    log_per_request(session, targets, kind="targets.held", at=now, data={"reason": reason})
    raise_alert(
        session,
        kind=MALFORMED_BATCH,
        message=(
            f"bug in erasure: a delete batch was malformed ({reason}) and was not sent; its "
            "targets wait and are planned again, no request fails for it. Please report it."
        ),
        org_id=org_id,
    )
    logger.error(
        "bug: malformed delete batch held back",
        extra={"org_id": str(org_id), "reason": reason, "targets": len(targets)},
    )


def note_sent_after_cancel(
    session: Session, by_request: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]]
) -> None:
    """A cancel withdrew targets whose call was already on the wire: say so on the request."""
    for request_id, items in by_request.items():
        late = sum(1 for item in items if item.get("sent_before_cancel"))
        request = lock_request(session, request_id) if late else None
        if request is not None and request.status is RequestStatus.CANCELLED:
            request.outcome = (
                f"{request.outcome or 'cancelled'}; {late} more deletion(s) were already on "
                "their way to Salesforce and could not be stopped"
            )


@dataclass
class _Ending:
    """A delete call being closed, with everything its ending may change (all rows locked)."""

    ctx: Pipeline
    session: Session
    now: datetime
    call: DeleteCall
    org: Org
    credential: Credential
    targets: list[Target]

    def reject(self, http_status: int | None) -> None:
        """Salesforce (or our client) certainly did not act on the call."""
        self.call.status = DeleteCallStatus.REJECTED
        self.call.http_status = http_status

    def back_to_pending(self, reason: str) -> list[Target]:
        return back_to_pending(
            self.ctx, self.session, self.targets, self.now, reason=reason, call=self.call
        )


def record(ctx: Pipeline, call_id: uuid.UUID, outcome: DeleteAccepted | Exception) -> None:
    """Close a call that was on the wire with how it ended, then settle its requests."""
    with ctx.sessionmaker() as session, session.begin():
        ending = _lock_ending(ctx, session, call_id, ctx.clock())
        if ending is None:
            return
        ending.call.finished_at = ending.now
        if isinstance(outcome, DeleteAccepted):
            _accepted(ending, outcome)
        else:
            _failed(ending, outcome)
        session.flush()
        for request_id in sorted({t.request_id for t in ending.targets}):
            settle_request(session, request_id, at=ending.now)


def _lock_ending(
    ctx: Pipeline, session: Session, call_id: uuid.UUID, now: datetime
) -> _Ending | None:
    """The call still being sent, with its org, credential and targets; None once recorded."""
    call = session.scalar(select(DeleteCall).where(DeleteCall.id == call_id).with_for_update())
    if call is None or call.status is not DeleteCallStatus.SENDING:
        return None
    org = load_org(session, call.org_id)
    credential = session.get(Credential, call.credential_id)
    if org is None or credential is None:  # foreign keys: cannot happen
        return None
    targets = list(
        session.scalars(
            select(Target)
            .where(Target.delete_call_id == call.id, Target.status.in_(IN_CALL))
            .order_by(Target.id)
            .with_for_update()
        )
    )
    return _Ending(ctx, session, now, call, org, credential, targets)


def _accepted(ending: _Ending, outcome: DeleteAccepted) -> None:
    """202: each target with a log id is `requested`; the rest wait for reconciliation."""
    call, now = ending.call, ending.now
    call.http_status = outcome.status
    unlogged: list[Target] = []
    by_request: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]] = defaultdict(list)
    for target in ending.targets:
        log = outcome.log_for(target.salesforce_id or "")
        if log is None:
            unlogged.append(target)
        else:
            by_request[target.request_id].append(mark_requested(ending.ctx, target, log, now))
    # An id the 202 gave no log for stays batched: reconciliation decides (never re-sent blind).
    call.status = DeleteCallStatus.AMBIGUOUS if unlogged else DeleteCallStatus.ACCEPTED
    note_sent_after_cancel(ending.session, by_request)
    for request_id, items in by_request.items():
        leaves.append(
            ending.session,
            kind="targets.requested",
            request_id=request_id,
            at=now,
            data={
                "delete_call": str(call.id),
                "credential": ending.credential.name,
                "route": call.route.value,
                "http_status": outcome.status,
                "targets": items,
            },
        )


def _failed(ending: _Ending, outcome: Exception) -> None:
    """Every other ending, most specific first: the order of these checks is the contract."""
    if isinstance(outcome, AmbiguousDeleteError) or (
        isinstance(outcome, SalesforceError) and _unclassified(outcome)
    ):
        # The delete may or may not have happened: reconciliation asks Salesforce.
        ending.call.status = DeleteCallStatus.AMBIGUOUS
        ending.call.http_status = outcome.status
    elif isinstance(outcome, RateLimitedError):
        _rate_limited(ending, outcome)
    elif isinstance(outcome, EngagementApiNotFoundError):
        _org_not_found(ending, outcome)
    elif isinstance(outcome, OpenSessionError):
        ending.reject(outcome.status)
        # The next plan re-checks sessions and blocks the open ones.
        ending.back_to_pending("open_session")
    elif isinstance(outcome, ValueError):
        _refused_by_client(ending)
    elif isinstance(outcome, BadRequestError):
        _bad_request(ending, outcome)
    elif isinstance(outcome, SalesforceError):
        _not_sent(ending, outcome)


def _rate_limited(ending: _Ending, outcome: RateLimitedError) -> None:
    """429: the credential pauses for Retry-After and the targets are planned again."""
    ending.reject(outcome.status)
    now, credential = ending.now, ending.credential
    wait = outcome.retry_after or DEFAULT_RETRY_AFTER_S
    credential.paused_until = max(credential.paused_until or now, now + timedelta(seconds=wait))
    ending.back_to_pending("rate_limited")


def _org_not_found(ending: _Ending, outcome: EngagementApiNotFoundError) -> None:
    """404 from the engagement API: the whole org pauses and a person is alerted."""
    ending.reject(outcome.status)
    org = ending.org
    org.paused_until = ending.now + timedelta(seconds=ending.ctx.tunables.org_fault_pause_s)
    org.paused_reason = "404 from the engagement API: API toggle off, wrong path or bad token"
    raise_alert(ending.session, kind="org_paused", message=org.paused_reason, org_id=org.id)
    ending.back_to_pending("org_paused")


def _refused_by_client(ending: _Ending) -> None:
    """Our client refused the batch before sending it: nothing was sent (no quota spent), and
    the fault is ours."""
    ending.reject(None)
    returned = ending.back_to_pending("malformed_batch")
    hold_malformed(
        ending.ctx,
        ending.session,
        returned,
        ending.now,
        org_id=ending.org.id,
        reason="refused_by_client",
    )


def _bad_request(ending: _Ending, outcome: BadRequestError) -> None:
    """400: Salesforce refused the call itself; its targets fail and a person is alerted."""
    ending.reject(outcome.status)
    code = outcome.error_code
    for target in ending.targets:
        target.status = TargetStatus.FAILED
        target.failure_reason = f"Salesforce refused the delete call ({code})"
        target.updated_at = ending.now
    log_per_request(
        ending.session,
        ending.targets,
        kind="targets.failed",
        at=ending.now,
        data={"delete_call": str(ending.call.id), "reason": str(code)},
    )
    raise_alert(
        ending.session,
        kind="delete_refused",
        message=f"a delete call was refused ({code})",
        org_id=ending.org.id,
    )


def _not_sent(ending: _Ending, outcome: SalesforceError) -> None:
    """Nothing was sent (token trouble, connect failure) or the org refused us outright."""
    ending.reject(outcome.status)
    if outcome.org_fault:
        credential = ending.credential
        credential.paused_until = ending.now + timedelta(
            seconds=ending.ctx.tunables.org_fault_pause_s
        )
        raise_alert(
            ending.session,
            kind="credential_fault",
            message=f"credential {credential.name}: {outcome.code}",
            org_id=ending.org.id,
        )
    ending.back_to_pending(outcome.code)


def _unclassified(exc: SalesforceError) -> bool:
    """An error that says nothing certain about whether the delete happened."""
    from erasure.salesforce.errors import UnexpectedResponseError

    return isinstance(exc, UnexpectedResponseError)
