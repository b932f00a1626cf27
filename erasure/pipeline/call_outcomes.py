"""What happens to a delete call after it was sent: every way it can end is recorded against its
row and its targets (202 -> `requested` with log ids; 429 -> the credential pauses; 404 -> the org
pauses; 412 -> back to pending; 400 -> failed; 5xx/timeout -> `ambiguous`), and an ambiguous or
orphaned call is reconciled through ConversationApiLog so no id is ever sent twice.
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
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


def _requested(
    ctx: Pipeline, target: Target, log: ApiLog, now: datetime
) -> dict[str, leaves.LeafValue]:
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


def _back_to_pending(
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


def _note_sent_after_cancel(
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


def record(  # noqa: PLR0912, PLR0915  # one short branch per way a delete call can end
    ctx: Pipeline, call_id: uuid.UUID, outcome: DeleteAccepted | Exception
) -> None:
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        call = session.scalar(select(DeleteCall).where(DeleteCall.id == call_id).with_for_update())
        if call is None or call.status is not DeleteCallStatus.SENDING:
            return
        org = load_org(session, call.org_id)
        credential = session.get(Credential, call.credential_id)
        if org is None or credential is None:  # foreign keys: cannot happen
            return
        targets = list(
            session.scalars(
                select(Target)
                .where(Target.delete_call_id == call.id, Target.status.in_(IN_CALL))
                .order_by(Target.id)
                .with_for_update()
            )
        )
        call.finished_at = now
        if isinstance(outcome, DeleteAccepted):
            call.http_status = outcome.status
            unlogged: list[Target] = []
            by_request: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]] = defaultdict(list)
            for target in targets:
                log = outcome.log_for(target.salesforce_id or "")
                if log is None:
                    unlogged.append(target)
                else:
                    by_request[target.request_id].append(_requested(ctx, target, log, now))
            # An id the 202 gave no log for stays batched: reconciliation decides (never re-sent blind).
            call.status = DeleteCallStatus.AMBIGUOUS if unlogged else DeleteCallStatus.ACCEPTED
            _note_sent_after_cancel(session, by_request)
            for request_id, items in by_request.items():
                leaves.append(
                    session,
                    kind="targets.requested",
                    request_id=request_id,
                    at=now,
                    data={
                        "delete_call": str(call.id),
                        "credential": credential.name,
                        "route": call.route.value,
                        "http_status": outcome.status,
                        "targets": items,
                    },
                )
        elif isinstance(outcome, AmbiguousDeleteError) or (
            isinstance(outcome, SalesforceError) and _unclassified(outcome)
        ):
            call.status = DeleteCallStatus.AMBIGUOUS
            call.http_status = outcome.status
        elif isinstance(outcome, RateLimitedError):
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status
            wait = outcome.retry_after or DEFAULT_RETRY_AFTER_S
            credential.paused_until = max(
                credential.paused_until or now, now + timedelta(seconds=wait)
            )
            _back_to_pending(ctx, session, targets, now, reason="rate_limited", call=call)
        elif isinstance(outcome, EngagementApiNotFoundError):
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status
            org.paused_until = now + timedelta(seconds=ctx.tunables.org_fault_pause_s)
            org.paused_reason = (
                "404 from the engagement API: API toggle off, wrong path or bad token"
            )
            raise_alert(session, kind="org_paused", message=org.paused_reason, org_id=org.id)
            _back_to_pending(ctx, session, targets, now, reason="org_paused", call=call)
        elif isinstance(outcome, OpenSessionError):
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status
            # The next plan re-checks sessions and blocks the open ones.
            _back_to_pending(ctx, session, targets, now, reason="open_session", call=call)
        elif isinstance(outcome, ValueError):
            # Our client refused the batch before sending it: nothing was sent (no quota spent),
            # and the fault is ours.
            call.status = DeleteCallStatus.REJECTED
            call.http_status = None
            returned = _back_to_pending(
                ctx, session, targets, now, reason="malformed_batch", call=call
            )
            hold_malformed(ctx, session, returned, now, org_id=org.id, reason="refused_by_client")
        elif isinstance(outcome, BadRequestError):
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status
            code = outcome.error_code
            for target in targets:
                target.status = TargetStatus.FAILED
                target.failure_reason = f"Salesforce refused the delete call ({code})"
                target.updated_at = now
            log_per_request(
                session,
                targets,
                kind="targets.failed",
                at=now,
                data={"delete_call": str(call.id), "reason": str(code)},
            )
            raise_alert(
                session,
                kind="delete_refused",
                message=f"a delete call was refused ({code})",
                org_id=org.id,
            )
        elif isinstance(outcome, SalesforceError):
            # Nothing was sent (token trouble, connect failure) or the org refused us outright.
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status
            if outcome.org_fault:
                credential.paused_until = now + timedelta(seconds=ctx.tunables.org_fault_pause_s)
                raise_alert(
                    session,
                    kind="credential_fault",
                    message=f"credential {credential.name}: {outcome.code}",
                    org_id=org.id,
                )
            _back_to_pending(ctx, session, targets, now, reason=outcome.code, call=call)
        session.flush()
        for request_id in sorted({t.request_id for t in targets}):
            settle_request(session, request_id, at=now)


def _unclassified(exc: SalesforceError) -> bool:
    """An error that says nothing certain about whether the delete happened."""
    from erasure.salesforce.errors import UnexpectedResponseError

    return isinstance(exc, UnexpectedResponseError)


def reconcile(ctx: Pipeline, call_id: uuid.UUID) -> None:
    with ctx.sessionmaker() as session:
        call = session.get(DeleteCall, call_id)
        if call is None:
            return
        org = load_org(session, call.org_id)
        credential = session.get(Credential, call.credential_id)
        if org is None or credential is None:  # foreign keys: cannot happen
            return
        # Several targets can carry one record: ask about each record once.
        ids = sorted(
            {
                i
                for i in session.scalars(
                    select(Target.salesforce_id).where(
                        Target.delete_call_id == call_id, Target.status.in_(IN_CALL)
                    )
                )
                if i
            }
        )
        client = ctx.clients.for_credential(org, credential)
    logs = client.api_logs(entity_ids=ids) if ids else []
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        call = session.scalar(select(DeleteCall).where(DeleteCall.id == call_id).with_for_update())
        if call is None or call.status not in (
            DeleteCallStatus.SENDING,
            DeleteCallStatus.AMBIGUOUS,
        ):
            return
        targets = list(
            session.scalars(
                select(Target)
                .where(Target.delete_call_id == call_id, Target.status.in_(IN_CALL))
                .order_by(Target.id)
                .with_for_update()
            )
        )
        # A log any of our targets already holds for these records is an earlier deletion's (a
        # retried target's, or another request's), not this call's. Every target of one record
        # gets the same answer.
        earlier = set(
            session.scalars(
                select(Target.log_id).where(
                    Target.org_id == call.org_id,
                    Target.salesforce_id.in_(sorted({t.salesforce_id or "" for t in targets})),
                    Target.log_id.is_not(None),
                )
            )
        )
        found: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]] = defaultdict(list)
        resend: list[Target] = []
        for target in targets:
            mine = [
                log
                for log in logs
                if log.is_for(target.salesforce_id or "") and log.id not in earlier
            ]
            if mine:
                found[target.request_id].append(
                    _requested(ctx, target, max(mine, key=lambda log: log.id), now)
                )
            else:
                resend.append(target)
        call.status = DeleteCallStatus.RECONCILED
        call.finished_at = call.finished_at or now
        _note_sent_after_cancel(session, found)
        for request_id, items in found.items():
            leaves.append(
                session,
                kind="targets.requested",
                request_id=request_id,
                at=now,
                data={
                    "delete_call": str(call.id),
                    "route": call.route.value,
                    "reconciled": True,
                    "targets": items,
                },
            )
        if resend:
            _back_to_pending(ctx, session, resend, now, reason="not_received", call=call)
        session.flush()
        for request_id in sorted({t.request_id for t in targets}):
            settle_request(session, request_id, at=now)
