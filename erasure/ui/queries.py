"""Read-side queries of the console: dashboard figures, the filtered request list, a request's
timeline. Framework-free; nothing here writes."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from erasure.audit import store
from erasure.core import request_pages
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    DeleteRoute,
    ErasureRequest,
    Org,
    RequestStatus,
    Source,
    Target,
    TargetStatus,
)
from erasure.integrations import models as integration_models
from erasure.pipeline import quota as pipeline_quota
from erasure.pipeline.models import Alert

#: An open request due within this many days is shown as "due soon" on the dashboard.
DUE_SOON = timedelta(days=7)
OPEN_STATUSES = tuple(s for s in RequestStatus if s not in TERMINAL_REQUEST_STATUSES)
UNSENT = (TargetStatus.PENDING, TargetStatus.BATCHED, TargetStatus.BLOCKED_OPEN_SESSION)


def days_left(due_at: datetime, now: datetime) -> int:
    """Whole days until the deadline; negative once overdue (-1 = less than a day late)."""
    return math.floor((due_at - now) / timedelta(days=1))


@dataclass(frozen=True)
class QuotaRow:
    org: str
    credential: str
    is_active: bool
    paused_until: datetime | None
    used: int
    limit: int
    next_free_at: datetime | None

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


@dataclass
class Dashboard:
    by_status: dict[str, int]
    deadlines: list[ErasureRequest]
    quotas: list[QuotaRow]
    unsent_targets: int
    in_flight_targets: int
    drain_at: datetime | None
    alerts: list[Alert]
    paused_orgs: list[Org]
    failed_targets: int
    dead_callbacks: int | None
    notes: list[str] = field(default_factory=list)


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(ErasureRequest.status, func.count()).group_by(ErasureRequest.status)
    ).all()
    counts = {status.value: 0 for status in RequestStatus}
    for status, count in rows:
        counts[RequestStatus(status).value] = int(count)
    return counts


def deadlines(session: Session, now: datetime, *, limit: int = 50) -> list[ErasureRequest]:
    """Open requests overdue, flagged at risk, or due soon: earliest deadline first."""
    return list(
        session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.status.in_(OPEN_STATUSES),
                or_(ErasureRequest.is_at_risk, ErasureRequest.due_at < now + DUE_SOON),
            )
            .options(selectinload(ErasureRequest.org))
            .order_by(ErasureRequest.due_at, ErasureRequest.id)
            .limit(limit)
        )
    )


def quotas(session: Session, now: datetime) -> list[QuotaRow]:
    """Delete calls used and left per execution user in its current window (from delete_calls)."""
    rows: list[QuotaRow] = []
    orgs = session.scalars(
        select(Org).options(selectinload(Org.credentials)).order_by(Org.name)
    ).all()
    for org in orgs:
        for credential in org.credentials:
            q = pipeline_quota.quota(session, org, credential.id, DeleteRoute.PARTICIPANTS, now)
            rows.append(
                QuotaRow(
                    org=org.name,
                    credential=credential.name,
                    is_active=credential.is_active,
                    paused_until=credential.paused_until
                    if credential.paused_until and credential.paused_until > now
                    else None,
                    used=q.used,
                    limit=q.limit,
                    next_free_at=q.next_free_at,
                )
            )
    return rows


def dashboard(session: Session, now: datetime) -> Dashboard:
    target_counts = dict(
        session.execute(
            select(Target.status, func.count())
            .join(ErasureRequest, ErasureRequest.id == Target.request_id)
            .where(ErasureRequest.status.in_(OPEN_STATUSES))
            .group_by(Target.status)
        ).all()
    )
    drain_at = session.scalar(
        select(func.max(ErasureRequest.predicted_completion_at)).where(
            ErasureRequest.status.in_(OPEN_STATUSES)
        )
    )
    dead: int | None = None
    callback_delivery = getattr(
        integration_models, "CallbackDelivery", None
    )  # with the integrations
    if callback_delivery is not None:
        dead = int(
            session.scalar(
                select(func.count())
                .select_from(callback_delivery)
                .where(callback_delivery.status == "dead")
            )
            or 0
        )
    return Dashboard(
        by_status=status_counts(session),
        deadlines=deadlines(session, now),
        quotas=quotas(session, now),
        unsent_targets=sum(int(target_counts.get(s, 0)) for s in UNSENT),
        in_flight_targets=int(target_counts.get(TargetStatus.REQUESTED, 0))
        + int(target_counts.get(TargetStatus.IN_PROGRESS, 0)),
        drain_at=drain_at,
        alerts=list(
            session.scalars(
                select(Alert)
                .where(Alert.resolved_at.is_(None))
                .order_by(Alert.created_at.desc())
                .limit(20)
            )
        ),
        paused_orgs=list(
            session.scalars(select(Org).where(Org.paused_until > now).order_by(Org.name))
        ),
        failed_targets=int(
            session.scalar(
                select(func.count()).select_from(Target).where(Target.status == TargetStatus.FAILED)
            )
            or 0
        ),
        dead_callbacks=dead,
    )


@dataclass(frozen=True)
class ListQuery:
    statuses: Sequence[RequestStatus] = ()
    source: Source | None = None
    due_before: datetime | None = None
    at_risk: bool = False
    ids: Sequence[uuid.UUID] | None = None  # a subject search's matches, or a searched id
    reference_id: str | None = None  # a searched ticket id
    after: tuple[datetime, uuid.UUID] | None = None
    limit: int = 50
    order: request_pages.Order = "created"
    ascending: bool = False


def _page_query(query: ListQuery, now: datetime) -> request_pages.PageQuery:
    conditions: list[ColumnElement[bool]] = []
    statuses = list(query.statuses)
    if query.source is not None:
        conditions.append(ErasureRequest.source == query.source)
    if query.due_before is not None:
        conditions.extend(request_pages.due_before(query.due_before))
    if query.at_risk:
        # Open states only, each scanned on its (status, created_at, id) index; a status filter
        # naming only ended states leaves nothing at risk.
        statuses = [s for s in (statuses or OPEN_STATUSES) if s in OPEN_STATUSES]
        if not statuses:
            conditions.append(false())
        conditions.append(or_(ErasureRequest.is_at_risk, ErasureRequest.due_at < now))
    if query.ids is not None:
        conditions.append(ErasureRequest.id.in_(query.ids))
    if query.reference_id is not None:
        conditions.append(ErasureRequest.reference_id == query.reference_id)
    return request_pages.PageQuery(
        conditions=conditions,
        statuses=statuses,
        after=query.after,
        limit=query.limit,
        order=query.order,
        ascending=query.ascending,
    )


def list_requests(session: Session, query: ListQuery, now: datetime) -> list[ErasureRequest]:
    """Newest first (or as ordered), keyset-paginated; the org is joined, one statement."""
    return list(session.scalars(request_pages.page_select(_page_query(query, now))))


#: The list counts its matches up to here; past it, it says "more than". A count reads every
#: matching index entry (and, for a filter the index lacks, its row), so an unbounded one would
#: make the first page cost as much as the table; at 10,000 a million-row table still made a
#: filtered first page 1.8x slower than at 10,000 rows, all of it in the count.
COUNT_CAP = 1_000


def count_requests(session: Session, query: ListQuery, now: datetime) -> int:
    """How many requests match the filters (the cursor aside), at most COUNT_CAP + 1."""
    page = _page_query(query, now)
    conditions = list(page.conditions)
    if page.statuses:
        conditions.append(ErasureRequest.status.in_(list(page.statuses)))
    matches = select(ErasureRequest.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(matches)) or 0)


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    kind: str
    index: int | None
    data: dict[str, Any]


def timeline(session: Session, request_id: uuid.UUID) -> list[TimelineEntry]:
    """The request's audit leaves, oldest first. Leaves carry no personal data by construction."""
    entries = []
    for leaf in store.leaves_of_request(session, request_id):
        document = json.loads(leaf.leaf)
        data = document.get("data") if isinstance(document.get("data"), dict) else {}
        entries.append(
            TimelineEntry(
                at=str(document.get("at", leaf.created_at.isoformat())),
                kind=leaf.kind,
                index=leaf.leaf_index,
                data=data,
            )
        )
    return entries


def subject_pseudonyms(entries: Sequence[TimelineEntry]) -> list[dict[str, str]]:
    """The subject as the audit log names it (kind and pseudonym), from the `received` leaf."""
    for entry in entries:
        if entry.kind == "request.received":
            subject = entry.data.get("subject")
            if isinstance(subject, list):
                return [
                    {"kind": str(item.get("kind")), "pseudonym": str(item.get("pseudonym"))}
                    for item in subject
                    if isinstance(item, dict)
                ]
    return []


#: How the console says why a listed conversation was left alone (erasure.pipeline.resolve).
LEFT_ALONE_WHY = {
    "not_the_subjects": "a conversation of another subject: left alone",
    "not_found": "no such conversation",
}


def left_alone(entries: Sequence[TimelineEntry]) -> list[dict[str, str]]:
    """The listed conversations resolve did not erase (record pseudonym, shortened as the
    targets are, and why), from the leaf that recorded them."""
    for entry in entries:
        if entry.kind in {"request.resolved", "request.completed_no_data"}:
            items = entry.data.get("left_alone")
            if isinstance(items, list):
                return [
                    {
                        "record": str(item.get("record"))[:16],
                        "why": LEFT_ALONE_WHY.get(str(item.get("why")), str(item.get("why"))),
                    }
                    for item in items
                    if isinstance(item, dict)
                ]
    return []
