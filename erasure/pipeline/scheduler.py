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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from erasure.core.models import (
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    Org,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.pipeline.call_outcomes import (
    hold_malformed,
    load_org,
    log_per_request,
    record,
)
from erasure.pipeline.context import Pipeline
from erasure.pipeline.deletions import attach, has_deletion
from erasure.pipeline.holds import any_held, record_held
from erasure.pipeline.models import ConversationActivity
from erasure.pipeline.quota import choose_credential, pool_quota
from erasure.pipeline.reconciliation import reconcile
from erasure.pipeline.salesforce_port import SalesforcePort
from erasure.pipeline.states import settle_request
from erasure.salesforce import ids as sfids
from erasure.salesforce.errors import (
    SalesforceError,
)
from erasure.salesforce.models import DeleteAccepted

logger = logging.getLogger(__name__)

DISPATCH_LOCK = 0x6572_6173_7572_6501  # "erasure" + 1: the one-dispatcher advisory lock
ROUTE_KIND = {
    DeleteRoute.PARTICIPANTS: TargetKind.MESSAGING_END_USER,
    DeleteRoute.CONVERSATIONS: TargetKind.CONVERSATION,
}
AGAIN = "again"
ATTACH_BATCH = 500


@dataclass
class DispatchReport:
    ran: bool = True
    calls: int = 0
    ids_sent: int = 0
    reconciled: int = 0
    blocked: int = 0
    unblocked: int = 0
    attached: int = 0
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


def _dispatch_org(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    _reconcile_due(ctx, org_id, report)
    _unblock_due(ctx, org_id, report)
    _attach_due(ctx, org_id, report)
    for route in (DeleteRoute.PARTICIPANTS, DeleteRoute.CONVERSATIONS):
        while True:
            planned = plan_call(ctx, org_id, route, report)
            if planned is None:
                break
            if isinstance(planned, str):  # AGAIN
                continue
            call_id, client, batch = planned
            send_call(ctx, call_id=call_id, client=client, route=route, batch=batch, report=report)


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


def _next_records(
    ctx: Pipeline, session: Session, org: Org, kind: TargetKind, now: datetime
) -> dict[str, list[Target]]:
    """Pending targets of the next records to send, earliest deadline first, locked, grouped by
    record (15-char id): at most `max_ids_per_call` records, every pending target of each. A
    record with a deletion to attach to is left to `_attach_due`; a held target waits. A target
    holding a malformed id (a bug) is held with an alert, never sent and never failed. A record
    that a request waiting on a legal hold also needs is not sent for anyone (pipeline.holds)."""
    unheld = and_(
        Target.org_id == org.id,
        Target.kind == kind,
        Target.status == TargetStatus.PENDING,
        Target.salesforce_id.is_not(None),
        or_(Target.next_check_at.is_(None), Target.next_check_at <= now),
        ~has_deletion(),
        ~_made_active(now),
    )
    ready = and_(unheld, ~record_held())
    # The scan for the next records skips the hold check when no request of the org waits on
    # one (the common case, and a backlog's whole scan); the locking read below always makes
    # it: a hold committed in between is seen there, and one still committing holds the locks.
    scan = ready if any_held(session, org.id) else unheld
    record_ids = list(
        session.scalars(
            select(Target.salesforce_id)
            .where(scan)
            .group_by(Target.salesforce_id)
            .order_by(func.min(Target.due_at), Target.salesforce_id)
            .limit(org.max_ids_per_call)
        )
    )
    if not record_ids:
        return {}
    targets = session.scalars(
        select(Target)
        .where(ready, Target.salesforce_id.in_(record_ids))
        .order_by(Target.due_at, Target.id)
        .with_for_update(skip_locked=True)
    ).all()
    records: dict[str, list[Target]] = {}
    malformed: list[Target] = []
    for target in targets:
        if sfids.is_valid(target.salesforce_id or ""):
            records.setdefault(sfids.to15(target.salesforce_id or ""), []).append(target)
        else:
            malformed.append(target)
    if malformed:
        hold_malformed(ctx, session, malformed, now, org_id=org.id, reason="malformed_id")
    return records


def _made_active(now: datetime) -> ColumnElement[bool]:
    """An access request read this record's entries: Salesforce keeps it active (about 30
    minutes) and would answer its delete 412, so it waits for the window instead.

    Uncorrelated, so Postgres reads the active records once and looks each target up in that
    set: as a correlated NOT EXISTS on targets it had not analysed yet it ran once per target,
    each run reading the org's activity rows (one per record any access request ever read)."""
    active = select(ConversationActivity.org_id, ConversationActivity.salesforce_id).where(
        ConversationActivity.active_until > now
    )
    return and_(
        Target.salesforce_id.is_not(None),
        tuple_(Target.org_id, Target.salesforce_id).in_(active),
    )


def plan_call(
    ctx: Pipeline, org_id: uuid.UUID, route: DeleteRoute, report: DispatchReport
) -> tuple[uuid.UUID, SalesforcePort, list[str]] | str | None:
    """The first half of a dispatch: pick the next batch and write its call row (committed before
    any HTTP delete). The batch holds each record once, led by one of its pending targets; the
    others ride along. Public with `send_call` because a dispatcher can die between the two, and
    what the pipeline does then (resend, or reconcile through the logs) is part of its contract."""
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        org = load_org(session, org_id)
        if org is None or (org.paused_until is not None and org.paused_until > now):
            return None
        quotas = pool_quota(session, org, route, now)
        credential_id = choose_credential(quotas)
        if credential_id is None:
            return None
        records = _next_records(ctx, session, org, ROUTE_KIND[route], now)
        if not records:
            return None
        left = sum(q.left for q in quotas.values())
        limit = sum(q.limit for q in quotas.values())
        targets = [t for group in records.values() for t in group]
        if len(records) < org.max_ids_per_call and not _partial_ok(
            ctx, org=org, targets=targets, left=left, limit=limit, now=now
        ):
            return None
        credential = next(c for c in org.credentials if c.id == credential_id)
        client = ctx.clients.for_credential(org, credential)
        if route is DeleteRoute.PARTICIPANTS:
            # docs/salesforce.md rule 2: never spend a delete call to discover a 412.
            open_ids = {
                sfids.to15(s.end_user_id)
                for s in client.open_sessions(
                    [group[0].salesforce_id or "" for group in records.values()]
                )
            }
            blocked = [t for record, group in records.items() if record in open_ids for t in group]
            if blocked:
                _block(ctx, session, blocked, now)
                report.blocked += len(blocked)
                records = {r: group for r, group in records.items() if r not in open_ids}
                if not records:
                    return AGAIN  # the blocks commit; plan again from the next pending targets
        call = DeleteCall(
            id=uuid.uuid4(),
            org_id=org.id,
            credential_id=credential.id,
            route=route,
            status=DeleteCallStatus.SENDING,
            ids_count=len(records),
            sent_at=now,
        )
        session.add(call)
        session.flush()
        for group in records.values():
            for position, target in enumerate(group):
                target.status = TargetStatus.BATCHED
                target.delete_call_id = call.id
                target.leads_deletion = position == 0
                target.attempt += 1
                target.updated_at = now
        return call.id, client, [group[0].salesforce_id or "" for group in records.values()]


def send_call(
    ctx: Pipeline,
    *,
    call_id: uuid.UUID,
    client: SalesforcePort,
    route: DeleteRoute,
    batch: list[str],
    report: DispatchReport,
) -> None:
    """The second half of a dispatch: make the planned call and record what Salesforce answered."""
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
    record(ctx, call_id, outcome)


def _block(ctx: Pipeline, session: Session, targets: Sequence[Target], now: datetime) -> None:
    for target in targets:
        target.status = TargetStatus.BLOCKED_OPEN_SESSION
        target.next_check_at = now + timedelta(seconds=ctx.tunables.open_session_recheck_s)
        target.updated_at = now
    log_per_request(session, targets, kind="targets.blocked_open_session", at=now)


def _attach_due(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    """Pending targets whose record is being (or has been) deleted for another target share
    that deletion instead of being sent (a retried target, one back from a refused call...)."""
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        targets = session.scalars(
            select(Target)
            .where(
                Target.org_id == org_id,
                Target.status == TargetStatus.PENDING,
                Target.salesforce_id.is_not(None),
                or_(Target.next_check_at.is_(None), Target.next_check_at <= now),
                has_deletion(),
                ~record_held(),
            )
            .order_by(Target.due_at, Target.id)
            .limit(ATTACH_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        attached = attach(ctx, session, targets, now)
        report.attached += len(attached)
        session.flush()
        for request_id in sorted({t.request_id for t in attached}):
            # Never wait for a request row here: a cancel holds it and waits for our targets.
            settle_request(session, request_id, at=now, skip_locked=True)


def _unblock_due(ctx: Pipeline, org_id: uuid.UUID, report: DispatchReport) -> None:
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        org = load_org(session, org_id)
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
        log_per_request(session, freed, kind="targets.unblocked", at=now)
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
