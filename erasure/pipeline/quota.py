"""Each execution user's delete quota, computed from the `delete_calls` table itself.

Exact and restart-proof: a call row is written BEFORE its HTTP request, so a call in flight (or
lost in a crash) already counts. It fails closed: a call counts from when it finished (or, while
unfinished, indefinitely) until `window_s` later, and only a call Salesforce certainly did not
take (a 429, or nothing sent) is left out.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from erasure.core.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    Org,
    Target,
    TargetStatus,
)

#: Calls that may have spent quota.
_COUNTED = or_(
    DeleteCall.status != DeleteCallStatus.REJECTED,
    and_(DeleteCall.http_status.is_not(None), DeleteCall.http_status != 429),
)
#: The same condition for readers outside the quota (the console's 24-hour chart).
COUNTED_CALLS = _COUNTED


@dataclass(frozen=True)
class Quota:
    credential_id: uuid.UUID
    used: int
    limit: int
    #: When the next unit frees up (None while nothing is used).
    next_free_at: datetime | None

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


def quota(
    session: Session, org: Org, credential_id: uuid.UUID, route: DeleteRoute, now: datetime
) -> Quota:
    window = timedelta(seconds=org.window_s)
    rows = session.execute(
        select(DeleteCall.finished_at)
        .where(
            DeleteCall.credential_id == credential_id,
            DeleteCall.route == route,
            _COUNTED,
            or_(DeleteCall.finished_at.is_(None), DeleteCall.finished_at > now - window),
        )
        .order_by(DeleteCall.finished_at.asc().nulls_last())
    ).all()
    used = len(rows)
    next_free_at = None
    if used >= org.delete_calls_per_window:
        oldest = rows[used - org.delete_calls_per_window][0]
        next_free_at = oldest + window if oldest is not None else None
    return Quota(credential_id, used, org.delete_calls_per_window, next_free_at)


def usable_credentials(org: Org, now: datetime) -> list[Credential]:
    return [
        c
        for c in org.credentials
        if c.is_active and (c.paused_until is None or c.paused_until <= now)
    ]


def pool_quota(
    session: Session, org: Org, route: DeleteRoute, now: datetime
) -> dict[uuid.UUID, Quota]:
    return {c.id: quota(session, org, c.id, route, now) for c in usable_credentials(org, now)}


def choose_credential(quotas: dict[uuid.UUID, Quota]) -> uuid.UUID | None:
    """The credential with the most quota left (spreads calls, so windows refill evenly)."""
    best = max(quotas.values(), key=lambda q: (q.left, str(q.credential_id)), default=None)
    return best.credential_id if best is not None and best.left > 0 else None


def send_times(
    quotas: Sequence[Quota], *, calls: int, window_s: float, now: datetime
) -> list[datetime]:
    """When each of the next `calls` delete calls can go out with this pool (best case)."""
    if not quotas or calls <= 0:
        return []
    window = timedelta(seconds=window_s)
    times: list[datetime] = []
    for q in quotas:
        times.extend([now] * min(q.left, calls))
        # Afterwards each credential gives `limit` calls per window (approximately: its used
        # calls free up spread over the window; counting them from the first is conservative).
        base = q.next_free_at or now + window
        for j in range(math.ceil(calls / max(1, q.limit)) + 1):
            times.extend([base + window * j] * q.limit)
    return sorted(times)[:calls]


def predict_org(
    session: Session,
    org: Org,
    now: datetime,
    *,
    confirm_s: float,
) -> dict[uuid.UUID, datetime]:
    """Predicted completion per request with unsent targets: its last target's place in the
    backlog (earliest due first, as the dispatcher sends) mapped onto the pool's quota."""
    rows = session.execute(
        select(Target.request_id, Target.status, Target.next_check_at)
        .where(
            Target.org_id == org.id,
            Target.status.in_(
                (TargetStatus.PENDING, TargetStatus.BATCHED, TargetStatus.BLOCKED_OPEN_SESSION)
            ),
        )
        .order_by(Target.due_at, Target.id)
    ).all()
    if not rows:
        return {}
    quotas = list(pool_quota(session, org, DeleteRoute.PARTICIPANTS, now).values())
    calls = math.ceil(len(rows) / org.max_ids_per_call)
    times = send_times(quotas, calls=calls, window_s=org.window_s, now=now)
    paused = org.paused_until if org.paused_until and org.paused_until > now else None
    predicted: dict[uuid.UUID, datetime] = {}
    for index, (request_id, status, next_check_at) in enumerate(rows):
        call = index // org.max_ids_per_call
        # No usable credential: nothing can be predicted beyond "not before a person acts".
        at = times[call] if call < len(times) else now + timedelta(days=3650)
        if paused is not None:
            at = max(at, paused)
        if status is TargetStatus.BLOCKED_OPEN_SESSION and next_check_at is not None:
            at = max(at, next_check_at)
        done = at + timedelta(seconds=confirm_s)
        if request_id not in predicted or predicted[request_id] < done:
            predicted[request_id] = done
    return predicted


def calls_spent(session: Session, credential_id: uuid.UUID, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(DeleteCall)
            .where(DeleteCall.credential_id == credential_id, DeleteCall.sent_at >= since)
        )
        or 0
    )
