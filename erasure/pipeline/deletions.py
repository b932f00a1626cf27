"""A Salesforce record's deletion, shared by every request that needs it.

Several requests can reach one record (the same person by phone and by email, or through two
sources). Each request has its own target for it, but the record is deleted once: the record, not
the request, is the unit of a delete call.

- One target *leads* each deletion (`leads_deletion`): its id is the one a delete call carries.
  The scheduler packs pending targets of one record into the same call, one of them leading.
- A partial unique index (`uq_targets_one_deletion_in_flight`) lets a record have only one
  leading target in flight: batched, requested, in progress, or withdrawn by a cancel while its
  call was out. The dispatcher keeps the rule; the database refuses a plan that would break it.
- Every other target of that record *attaches* to the deletion: while the call is out it joins
  the call (`batched`, so recording the call gives it the log too); once the call has been
  accepted, or the record is already deleted, it takes the same call and log (`requested`). It is
  confirmed by that log and read-back like any sent target, with its own audit leaves.

Attaching and recording a call are serialised on the `delete_calls` row: `call_outcomes.record`
locks it before it reads the call's targets, and `attach` locks it before it re-reads the leader,
so a target attached while the call is on the wire is either seen by `record` or sees its result.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from erasure.audit import leaves
from erasure.core.models import DeleteCall, DeleteCallStatus, Target, TargetStatus
from erasure.pipeline.context import Pipeline
from erasure.pipeline.states import SENT_TARGET_STATUSES, record_pseudonym

#: A leading target in one of these states has a deletion that is not over.
IN_FLIGHT = (
    TargetStatus.BATCHED,
    TargetStatus.REQUESTED,
    TargetStatus.IN_PROGRESS,
    TargetStatus.WITHDRAWN,
)
#: A call in these states may still be (or have been) received: a target can join it.
_OPEN_CALLS = (DeleteCallStatus.SENDING, DeleteCallStatus.AMBIGUOUS)

Record: TypeAlias = tuple[uuid.UUID, str, str]  # org, kind, salesforce id


def _same_record(other: type[Target], target: type[Target]) -> ColumnElement[bool]:
    return and_(
        other.org_id == target.org_id,
        other.kind == target.kind,
        other.salesforce_id == target.salesforce_id,
        other.id != target.id,
    )


def has_deletion(target: type[Target] = Target) -> ColumnElement[bool]:
    """SQL: `target`'s record has a deletion to attach to instead of being sent: another target
    leads one in flight, or the record was deleted for another target (by a log this target has
    not already had: a retry after a read-back found the record is sent anew)."""
    leader = aliased(Target)
    done = aliased(Target)
    return or_(
        exists().where(
            _same_record(leader, target), leader.leads_deletion, leader.status.in_(IN_FLIGHT)
        ),
        exists().where(
            _same_record(done, target),
            done.status == TargetStatus.DELETED,
            done.log_id.is_not(None),
            or_(target.log_id.is_(None), done.log_id != target.log_id),
        ),
    )


def _record(target: Target) -> Record:
    return (target.org_id, target.kind.value, target.salesforce_id or "")


def _sources(session: Session, targets: Sequence[Target]) -> list[Target]:
    """The targets the pending `targets` could attach to: leaders in flight and deleted ones."""
    ids = sorted({t.salesforce_id for t in targets if t.salesforce_id})
    rows = session.scalars(
        select(Target)
        .where(
            Target.org_id.in_(sorted({t.org_id for t in targets})),
            Target.salesforce_id.in_(ids),
            Target.id.not_in([t.id for t in targets]),
            or_(
                and_(Target.leads_deletion, Target.status.in_(IN_FLIGHT)),
                and_(Target.status == TargetStatus.DELETED, Target.log_id.is_not(None)),
            ),
        )
        .order_by(Target.updated_at.desc(), Target.id)
        .execution_options(populate_existing=True)
    ).all()
    return list(rows)


def attach(
    ctx: Pipeline, session: Session, targets: Sequence[Target], now: datetime
) -> list[Target]:
    """Attach pending `targets` (locked by the caller) to the deletion of their record, where one
    is in flight or done. Returns those attached; the others are left as they were (no deletion,
    or one this target cannot share yet: see `_choose`). Writes one leaf per request."""
    pending = [t for t in targets if t.status is TargetStatus.PENDING and t.salesforce_id]
    if not pending:
        return []
    first = _sources(session, pending)
    # Lock the calls of the deletions in flight (in id order: `record` locks one call at a time,
    # so no cycle), then read the leaders again: the call may have been recorded meanwhile.
    calls = sorted({s.delete_call_id for s in first if s.leads_deletion and s.delete_call_id})
    locked: dict[uuid.UUID, DeleteCall] = {
        call.id: call
        for call in session.scalars(
            select(DeleteCall)
            .where(DeleteCall.id.in_(calls))
            .order_by(DeleteCall.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    sources: dict[Record, list[Target]] = defaultdict(list)
    for source in _sources(session, pending):
        sources[_record(source)].append(source)
    joined: dict[uuid.UUID, list[Target]] = defaultdict(list)
    rode: dict[tuple[uuid.UUID | None, uuid.UUID], list[Target]] = defaultdict(list)
    for target in pending:
        choice = _choose(target, sources[_record(target)], locked)
        if isinstance(choice, DeleteCall):
            _join(target, choice, now)
            joined[choice.id].append(target)
        elif choice is not None:
            _ride(target, choice, now)
            rode[(choice.delete_call_id, target.request_id)].append(target)
    _log(ctx, session, joined, rode, now)
    return [t for group in (*joined.values(), *rode.values()) for t in group]


def _choose(
    target: Target, sources: list[Target], locked: dict[uuid.UUID, DeleteCall]
) -> DeleteCall | Target | None:
    """The call to join, the target whose deletion to share, or None (leave it pending)."""
    leader = next((s for s in sources if s.leads_deletion and s.status in IN_FLIGHT), None)
    if leader is not None:
        call = locked.get(leader.delete_call_id) if leader.delete_call_id else None
        if call is None:
            return None  # a deletion that started after we looked: the next pass attaches
        if leader.status in SENT_TARGET_STATUSES:
            # The log this target already had failed; the leader has not seen it yet. Wait for
            # it rather than share a failed deletion: then the record is sent anew.
            if target.log_id is not None and target.log_id == leader.log_id:
                return None
            return leader
        return call if call.status in _OPEN_CALLS else None
    return next(
        (
            s
            for s in sources
            if s.status is TargetStatus.DELETED and s.log_id and s.log_id != target.log_id
        ),
        None,
    )


def _join(target: Target, call: DeleteCall, now: datetime) -> None:
    """Ride on a call that is (or may be) on the wire: recording it gives this target its log."""
    target.status = TargetStatus.BATCHED
    target.delete_call_id = call.id
    target.leads_deletion = False
    target.attempt += 1
    target.next_check_at = None
    target.updated_at = now


def _ride(target: Target, source: Target, now: datetime) -> None:
    """Share a deletion Salesforce has accepted: same call, same log, polled from now on."""
    target.status = (
        source.status if source.status in SENT_TARGET_STATUSES else TargetStatus.REQUESTED
    )
    target.delete_call_id = source.delete_call_id
    target.log_id = source.log_id
    target.log_status = source.log_status
    target.leads_deletion = False
    target.attempt += 1
    target.failure_reason = None
    target.next_check_at = now
    target.updated_at = now


def _log(
    ctx: Pipeline,
    session: Session,
    joined: dict[uuid.UUID, list[Target]],
    rode: dict[tuple[uuid.UUID | None, uuid.UUID], list[Target]],
    now: datetime,
) -> None:
    for call_id, group in joined.items():
        by_request: dict[uuid.UUID, list[Target]] = defaultdict(list)
        for target in group:
            by_request[target.request_id].append(target)
        for request_id, mine in by_request.items():
            leaves.append(
                session,
                kind="targets.attached",
                request_id=request_id,
                at=now,
                data={
                    "delete_call": str(call_id),
                    "targets": [
                        {
                            "target": str(t.id),
                            "record": record_pseudonym(ctx.pseudonym_key, t.salesforce_id or ""),
                        }
                        for t in mine
                    ],
                },
            )
    for (shared_call, request_id), mine in rode.items():
        leaves.append(
            session,
            kind="targets.requested",
            request_id=request_id,
            at=now,
            data={
                "delete_call": str(shared_call) if shared_call else None,
                "shared": True,
                "targets": [
                    {
                        "target": str(t.id),
                        "record": record_pseudonym(ctx.pseudonym_key, t.salesforce_id or ""),
                        "log_id": t.log_id,
                        "log_status": t.log_status,
                    }
                    for t in mine
                ],
            },
        )
