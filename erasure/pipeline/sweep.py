"""Housekeeping that makes lost messages harmless: the sweeper re-publishes stalled work, the
predictor keeps each request's expected completion and "deadline at risk" flag current, and
delivery counting parks a poison message for a person instead of redelivering it forever.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import selectinload

from erasure.audit import leaves
from erasure.core.models import ErasureRequest, Org, RequestStatus
from erasure.pipeline.context import Pipeline
from erasure.pipeline.holds import expire_due
from erasure.pipeline.models import Alert, TaskDelivery
from erasure.pipeline.quota import predict_org
from erasure.pipeline.states import enqueue_resolve, raise_alert, settle_request

#: States in which a request waits for a resolve message.
RESOLVE_STATES = (RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.RESOLVING)
PARKED = "parked_message"


def sweep(ctx: Pipeline) -> int:
    """Re-publish resolve work for requests stuck before `deleting` (their message was lost, or
    its worker died), settle requests whose targets are all final, and resume requests whose legal
    hold has ended. Returns how many requests it touched."""
    now = ctx.clock()
    stalled_before = now - timedelta(seconds=ctx.tunables.stall_s)
    touched = 0
    with ctx.sessionmaker() as session, session.begin():
        parked = select(Alert.request_id).where(
            Alert.kind == PARKED, Alert.resolved_at.is_(None), Alert.request_id.is_not(None)
        )
        stalled = session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.status.in_(RESOLVE_STATES),
                ErasureRequest.updated_at < stalled_before,
                ErasureRequest.id.not_in(parked),
            )
            .order_by(ErasureRequest.updated_at)
            .limit(500)
            .with_for_update(skip_locked=True)
        ).all()
        for request in stalled:
            enqueue_resolve(session, request)
            request.updated_at = now  # next sweep waits another stall period
            touched += 1
    with ctx.sessionmaker() as session, session.begin():
        working = session.scalars(
            select(ErasureRequest.id)
            .where(
                ErasureRequest.status.in_((RequestStatus.DELETING, RequestStatus.CONFIRMING)),
                ErasureRequest.updated_at < stalled_before,
            )
            .limit(500)
        ).all()
        for request_id in working:
            settle_request(session, request_id, at=now)
    # Legal holds past their end are recorded, and what they held goes on (pipeline.holds).
    touched += expire_due(ctx)
    return touched


def predict(ctx: Pipeline) -> int:
    """Refresh predicted completion times; raise "deadline at risk" (with a leaf and an alert)
    while there is still time to act. Returns how many requests newly became at risk."""
    newly = 0
    margin = timedelta(seconds=ctx.tunables.at_risk_margin_s)
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        orgs = session.scalars(select(Org).options(selectinload(Org.credentials))).all()
        for org in orgs:
            predicted = predict_org(session, org, now, confirm_s=ctx.tunables.poll_max_s)
            if not predicted:
                continue
            requests = session.scalars(
                select(ErasureRequest)
                .where(ErasureRequest.id.in_(list(predicted)))
                .with_for_update(skip_locked=True)
            ).all()
            for request in requests:
                request.predicted_completion_at = predicted[request.id]
                at_risk = predicted[request.id] > request.due_at - margin
                if at_risk and not request.is_at_risk:
                    newly += 1
                    leaves.append(
                        session,
                        kind="request.at_risk",
                        request_id=request.id,
                        at=now,
                        data={
                            "predicted_completion_at": leaves.timestamp(predicted[request.id]),
                            "due_at": leaves.timestamp(request.due_at),
                        },
                    )
                    raise_alert(
                        session,
                        kind="deadline_at_risk",
                        message="predicted to finish too close to (or after) its deadline",
                        org_id=org.id,
                        request_id=request.id,
                    )
                request.is_at_risk = at_risk
    return newly


def count_delivery(ctx: Pipeline, task_id: str, task_name: str) -> int:
    """Record one more delivery of a task message (its own committed transaction); returns the
    count so far, this one included."""
    with ctx.sessionmaker() as session, session.begin():
        statement = (
            insert(TaskDelivery)
            .values(task_id=task_id, task_name=task_name, deliveries=1, last_seen_at=func.now())
            .on_conflict_do_update(
                index_elements=[TaskDelivery.task_id],
                set_={"deliveries": TaskDelivery.deliveries + 1, "last_seen_at": func.now()},
            )
            .returning(TaskDelivery.deliveries)
        )
        return int(session.scalar(statement) or 0)


def park(
    ctx: Pipeline, task_id: str, task_name: str, *, request_id: uuid.UUID | None, why: str
) -> None:
    """Stop redelivering a message: mark it parked and alert a person (retry un-parks)."""
    with ctx.sessionmaker() as session, session.begin():
        session.execute(
            update(TaskDelivery).where(TaskDelivery.task_id == task_id).values(parked_at=func.now())
        )
        exists = request_id is not None and session.get(ErasureRequest, request_id) is not None
        raise_alert(
            session,
            kind=PARKED,
            message=f"{task_name} parked after {why}; retry the request once the cause is fixed",
            request_id=request_id if exists else None,
        )


def purge_deliveries(ctx: Pipeline, *, older_than: datetime) -> int:
    from sqlalchemy import delete

    with ctx.sessionmaker() as session, session.begin():
        result = session.execute(
            delete(TaskDelivery).where(
                TaskDelivery.last_seen_at < older_than, TaskDelivery.parked_at.is_(None)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
