"""The quota scheduler: one dispatcher at a time (a Postgres advisory lock) packs pending targets
of every request into delete calls, earliest deadline first, and gives each call to a credential
with quota left in its sliding window (see quota.py).

A call row is committed BEFORE its HTTP request. Whatever happens next is recorded against it:
202 -> targets `requested` with their log ids; 5xx/timeout -> `ambiguous`, reconciled through
ConversationApiLog before any id is sent again; 429 -> the credential pauses (for every worker);
404 -> the org pauses and a person is alerted. A dispatcher that dies mid-call leaves a `sending`
row: the next dispatcher reconciles it once the call can no longer be in flight.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from erasure.audit import leaves
from erasure.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    Org,
    RequestStatus,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.pipeline.context import Pipeline
from erasure.pipeline.quota import choose_credential, pool_quota
from erasure.pipeline.salesforce_port import SalesforcePort
from erasure.pipeline.states import lock_request, raise_alert, record_pseudonym, settle_request
from erasure.salesforce import ids as sfids
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

DISPATCH_LOCK = 0x6572_6173_7572_6501  # "erasure" + 1: the one-dispatcher advisory lock
ROUTE_KIND = {
    DeleteRoute.PARTICIPANTS: TargetKind.MESSAGING_END_USER,
    DeleteRoute.CONVERSATIONS: TargetKind.CONVERSATION,
}
DEFAULT_RETRY_AFTER_S = 60.0
AGAIN = "again"
#: Targets a call carried: `withdrawn` ones were cancelled while the call was on the wire.
IN_CALL = (TargetStatus.BATCHED, TargetStatus.WITHDRAWN)


@dataclass
class DispatchReport:
    ran: bool = True
    calls: int = 0
    ids_sent: int = 0
    reconciled: int = 0
    blocked: int = 0
    unblocked: int = 0
    errors: list[str] = field(default_factory=list)


def dispatch(ctx: Pipeline) -> DispatchReport:
    """One dispatcher pass over every org; a no-op if another dispatcher holds the lock."""
    report = DispatchReport()
    with ctx.sessionmaker() as guard:
        # Transaction-scoped: released on commit, rollback or a dead connection (kill -9).
        if not guard.scalar(select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))):
            return DispatchReport(ran=False)
        try:
            with ctx.sessionmaker() as session:
                org_ids = list(session.scalars(select(Org.id).order_by(Org.name)))
            for org_id in org_ids:
                try:
                    _dispatch_org(ctx, org_id, report)
                except SalesforceError as exc:  # one org's trouble must not stop the others
                    report.errors.append(f"{org_id}: {exc.code}")
                    logger.warning(
                        "dispatch stopped for an org",
                        extra={"org_id": str(org_id), "code": exc.code},
                    )
        finally:
            guard.rollback()
    return report


def _load_org(session: Session, org_id: uuid.UUID) -> Org | None:
    return session.scalar(
        select(Org)
        .where(Org.id == org_id)
        .options(selectinload(Org.credentials))
        .execution_options(populate_existing=True)
    )


def _dispatch_org(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    _reconcile_due(ctx, org_id, report)
    _unblock_due(ctx, org_id, report)
    for route in (DeleteRoute.PARTICIPANTS, DeleteRoute.CONVERSATIONS):
        while True:
            planned = _plan_call(ctx, org_id, route, report)
            if planned is None:
                break
            if isinstance(planned, str):  # AGAIN
                continue
            call_id, client, batch = planned
            _send(ctx, call_id=call_id, client=client, route=route, batch=batch, report=report)


def _partial_ok(
    ctx: Pipeline, *, org: Org, targets: Sequence[Target], left: int, limit: int, now: datetime
) -> bool:
    """May a call go out with fewer than max ids? After a short linger, yes while the pool has
    more than half its quota left; otherwise only at the pace the quota sustains. Under backlog
    every call is full."""
    waited = (now - min(t.updated_at for t in targets)).total_seconds()
    if waited < ctx.tunables.linger_s:
        return False
    return left * 2 > limit or waited >= org.window_s / org.delete_calls_per_window


def _plan_call(
    ctx: Pipeline, org_id: uuid.UUID, route: DeleteRoute, report: DispatchReport
) -> tuple[uuid.UUID, SalesforcePort, list[str]] | str | None:
    """Pick the next batch and write its call row (committed before any HTTP delete)."""
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        org = _load_org(session, org_id)
        if org is None or (org.paused_until is not None and org.paused_until > now):
            return None
        quotas = pool_quota(session, org, route, now)
        credential_id = choose_credential(quotas)
        if credential_id is None:
            return None
        targets = list(
            session.scalars(
                select(Target)
                .where(
                    Target.org_id == org.id,
                    Target.kind == ROUTE_KIND[route],
                    Target.status == TargetStatus.PENDING,
                )
                .order_by(Target.due_at, Target.id)
                .limit(org.max_ids_per_call)
                .with_for_update(skip_locked=True)
            )
        )
        if not targets:
            return None
        left = sum(q.left for q in quotas.values())
        limit = sum(q.limit for q in quotas.values())
        if len(targets) < org.max_ids_per_call and not _partial_ok(
            ctx, org=org, targets=targets, left=left, limit=limit, now=now
        ):
            return None
        credential = next(c for c in org.credentials if c.id == credential_id)
        client = ctx.clients.for_credential(org, credential)
        if route is DeleteRoute.PARTICIPANTS:
            # CONTRACT §3 rule 2: never spend a delete call to discover a 412.
            open_ids = {
                sfids.to15(s.end_user_id)
                for s in client.open_sessions([t.salesforce_id for t in targets if t.salesforce_id])
            }
            blocked = [t for t in targets if sfids.to15(t.salesforce_id or "") in open_ids]
            if blocked:
                _block(ctx, session, blocked, now)
                report.blocked += len(blocked)
                targets = [t for t in targets if t not in blocked]
                if not targets:
                    return AGAIN  # the blocks commit; plan again from the next pending targets
        call = DeleteCall(
            id=uuid.uuid4(),
            org_id=org.id,
            credential_id=credential.id,
            route=route,
            status=DeleteCallStatus.SENDING,
            ids_count=len(targets),
            sent_at=now,
        )
        session.add(call)
        session.flush()
        for target in targets:
            target.status = TargetStatus.BATCHED
            target.delete_call_id = call.id
            target.attempt += 1
            target.updated_at = now
        return call.id, client, [t.salesforce_id or "" for t in targets]


def _send(
    ctx: Pipeline,
    *,
    call_id: uuid.UUID,
    client: SalesforcePort,
    route: DeleteRoute,
    batch: list[str],
    report: DispatchReport,
) -> None:
    outcome: DeleteAccepted | Exception
    try:
        if route is DeleteRoute.PARTICIPANTS:
            outcome = client.delete_participants(batch)
        else:
            outcome = client.delete_conversations(batch)
    except (SalesforceError, ValueError) as exc:
        outcome = exc
    report.calls += 1
    report.ids_sent += len(batch)
    _record(ctx, call_id, outcome)


def _leaf_targets(ctx: Pipeline, targets: Sequence[Target]) -> dict[uuid.UUID, list[Target]]:
    by_request: dict[uuid.UUID, list[Target]] = defaultdict(list)
    for target in targets:
        by_request[target.request_id].append(target)
    return by_request


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
) -> None:
    # A target withdrawn by a cancel while its call was out stays withdrawn.
    targets = [t for t in targets if t.status is TargetStatus.BATCHED]
    for target in targets:
        target.status = TargetStatus.PENDING
        target.delete_call_id = None
        target.updated_at = now
    for request_id, group in _leaf_targets(ctx, targets).items():
        leaves.append(
            session,
            kind="targets.returned",
            request_id=request_id,
            at=now,
            data={
                "delete_call": str(call.id),
                "reason": reason,
                "targets": [str(t.id) for t in group],
            },
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


def _record(  # noqa: PLR0912, PLR0915  # one short branch per way a delete call can end
    ctx: Pipeline, call_id: uuid.UUID, outcome: DeleteAccepted | Exception
) -> None:
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        call = session.scalar(select(DeleteCall).where(DeleteCall.id == call_id).with_for_update())
        if call is None or call.status is not DeleteCallStatus.SENDING:
            return
        org = _load_org(session, call.org_id)
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
        elif isinstance(outcome, BadRequestError | ValueError):
            call.status = DeleteCallStatus.REJECTED
            call.http_status = outcome.status if isinstance(outcome, SalesforceError) else None
            code = outcome.error_code if isinstance(outcome, SalesforceError) else "invalid_batch"
            for target in targets:
                target.status = TargetStatus.FAILED
                target.failure_reason = f"Salesforce refused the delete call ({code})"
                target.updated_at = now
            for request_id, group in _leaf_targets(ctx, targets).items():
                leaves.append(
                    session,
                    kind="targets.failed",
                    request_id=request_id,
                    at=now,
                    data={
                        "delete_call": str(call.id),
                        "reason": str(code),
                        "targets": [str(t.id) for t in group],
                    },
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


def _block(ctx: Pipeline, session: Session, targets: Sequence[Target], now: datetime) -> None:
    for target in targets:
        target.status = TargetStatus.BLOCKED_OPEN_SESSION
        target.next_check_at = now + timedelta(seconds=ctx.tunables.open_session_recheck_s)
        target.updated_at = now
    for request_id, group in _leaf_targets(ctx, targets).items():
        leaves.append(
            session,
            kind="targets.blocked_open_session",
            request_id=request_id,
            at=now,
            data={"targets": [str(t.id) for t in group]},
        )


def _unblock_due(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        org = _load_org(session, org_id)
        if org is None:
            return
        targets = list(
            session.scalars(
                select(Target)
                .where(
                    Target.org_id == org_id,
                    Target.status == TargetStatus.BLOCKED_OPEN_SESSION,
                    Target.next_check_at <= now,
                )
                .order_by(Target.next_check_at)
                .limit(org.max_ids_per_call)
                .with_for_update(skip_locked=True)
            )
        )
        client = ctx.clients.any_for_org(org)
        if not targets or client is None:
            return
        open_ids = {
            sfids.to15(s.end_user_id)
            for s in client.open_sessions([t.salesforce_id for t in targets if t.salesforce_id])
        }
        freed = [t for t in targets if sfids.to15(t.salesforce_id or "") not in open_ids]
        for target in targets:
            if target in freed:
                target.status = TargetStatus.PENDING
                target.next_check_at = None
            else:
                target.next_check_at = now + timedelta(seconds=ctx.tunables.open_session_recheck_s)
            target.updated_at = now
        for request_id, group in _leaf_targets(ctx, freed).items():
            leaves.append(
                session,
                kind="targets.unblocked",
                request_id=request_id,
                at=now,
                data={"targets": [str(t.id) for t in group]},
            )
        report.unblocked += len(freed)


def _reconcile_due(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    """Settle calls whose outcome is unknown: ids with a ConversationApiLog were accepted; the
    others go back to pending. A call that timed out waits until it cannot still be in flight."""
    now = ctx.clock()
    cutoff = now - timedelta(seconds=ctx.tunables.orphan_after_s)
    with ctx.sessionmaker() as session:
        call_ids = list(
            session.scalars(
                select(DeleteCall.id)
                .where(
                    DeleteCall.org_id == org_id,
                    DeleteCall.status.in_((DeleteCallStatus.SENDING, DeleteCallStatus.AMBIGUOUS)),
                    or_(
                        DeleteCall.sent_at < cutoff,
                        (DeleteCall.status == DeleteCallStatus.AMBIGUOUS)
                        & DeleteCall.http_status.is_not(None),
                    ),
                )
                .order_by(DeleteCall.sent_at)
            )
        )
    for call_id in call_ids:
        reconcile(ctx, call_id)
        report.reconciled += 1


def reconcile(ctx: Pipeline, call_id: uuid.UUID) -> None:
    with ctx.sessionmaker() as session:
        call = session.get(DeleteCall, call_id)
        if call is None:
            return
        org = _load_org(session, call.org_id)
        credential = session.get(Credential, call.credential_id)
        if org is None or credential is None:  # foreign keys: cannot happen
            return
        ids = list(
            session.scalars(
                select(Target.salesforce_id).where(
                    Target.delete_call_id == call_id, Target.status.in_(IN_CALL)
                )
            )
        )
        client = ctx.clients.for_credential(org, credential)
    logs = client.api_logs(entity_ids=[i for i in ids if i]) if ids else []
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
        found: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]] = defaultdict(list)
        resend: list[Target] = []
        for target in targets:
            # A log left by an earlier attempt (before a retry) is not this call's.
            mine = [
                log
                for log in logs
                if log.is_for(target.salesforce_id or "") and log.id != target.log_id
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
