"""The dashboard's chart figures, each one aggregate statement: Postgres groups and counts, Python
only lays the few resulting rows on the weeks or hours of the chart (never a loop over requests).

Weeks start on Monday, hours on the hour, both in UTC. "Closed" is any end state (completed,
completed with no data, failed, cancelled, rejected); time to close and the share within the legal
deadline count completed requests only, the ones whose deadline was actually met or missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    Credential,
    DeleteCall,
    ErasureRequest,
    Org,
    RequestStatus,
)
from erasure.pipeline.quota import COUNTED_CALLS
from erasure.ui.svg_charts import Chart, Series, bar_chart

WEEKS = 12
COMPLETED = (RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA)


def _utc(column: InstrumentedAttribute[Any]) -> ColumnElement[datetime]:
    """The instant as a UTC wall-clock timestamp: weeks and hours do not follow the session's zone."""
    return func.timezone("UTC", column)


def week_starts(now: datetime, weeks: int = WEEKS) -> list[datetime]:
    """The Mondays (naive UTC) of the last `weeks` weeks, this one last."""
    today = now.astimezone(UTC).replace(tzinfo=None)
    monday = (today - timedelta(days=today.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return [monday - timedelta(weeks=weeks - 1 - n) for n in range(weeks)]


@dataclass(frozen=True)
class WeeklyFigures:
    weeks: list[datetime]
    opened: list[int]
    closed: list[int]
    median_days: list[float | None]
    within_deadline: list[float | None]  # percent of completed requests


def weekly(session: Session, now: datetime, weeks: int = WEEKS) -> WeeklyFigures:
    starts = week_starts(now, weeks)
    since = starts[0].replace(tzinfo=UTC)
    opened_week = func.date_trunc("week", _utc(ErasureRequest.received_at))
    opened: dict[datetime, int] = dict(
        session.execute(
            select(opened_week, func.count())
            .where(ErasureRequest.received_at >= since, ErasureRequest.received_at <= now)
            .group_by(opened_week)
        ).all()
    )
    closed_week = func.date_trunc("week", _utc(ErasureRequest.completed_at))
    completed = ErasureRequest.status.in_(COMPLETED)
    days = func.extract("epoch", ErasureRequest.completed_at - ErasureRequest.received_at) / 86400
    closed = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                closed_week,
                func.count(),
                func.count().filter(completed),
                func.count().filter(
                    and_(completed, ErasureRequest.completed_at <= ErasureRequest.due_at)
                ),
                func.percentile_cont(0.5).within_group(days).filter(completed),
            )
            .where(
                ErasureRequest.status.in_(TERMINAL_REQUEST_STATUSES),
                ErasureRequest.completed_at >= since,
                ErasureRequest.completed_at <= now,
            )
            .group_by(closed_week)
        ).all()
    }
    empty = (0, 0, 0, None)
    return WeeklyFigures(
        weeks=starts,
        opened=[int(opened.get(w, 0)) for w in starts],
        closed=[int(closed.get(w, empty)[0]) for w in starts],
        median_days=[
            round(float(closed[w][3]), 1) if w in closed and closed[w][3] is not None else None
            for w in starts
        ],
        within_deadline=[
            round(100 * closed[w][2] / closed[w][1], 1) if w in closed and closed[w][1] else None
            for w in starts
        ],
    )


@dataclass(frozen=True)
class UserCalls:
    org: str
    credential: str
    limit: int
    window_s: int
    per_hour: list[int]


def hour_starts(now: datetime) -> list[datetime]:
    """The 24 hours (naive UTC) ending with the current one."""
    hour = now.astimezone(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return [hour - timedelta(hours=23 - n) for n in range(24)]


def calls_per_hour(session: Session, now: datetime) -> list[UserCalls]:
    """Delete calls that counted against each execution user's quota, per hour over 24 hours."""
    hours = hour_starts(now)
    hour = func.date_trunc("hour", _utc(DeleteCall.sent_at))
    counts: dict[tuple[object, datetime], int] = {
        (credential_id, at): int(n)
        for credential_id, at, n in session.execute(
            select(DeleteCall.credential_id, hour, func.count())
            .where(
                DeleteCall.sent_at >= hours[0].replace(tzinfo=UTC),
                DeleteCall.sent_at <= now,
                COUNTED_CALLS,
            )
            .group_by(DeleteCall.credential_id, hour)
        ).all()
    }
    users = session.execute(
        select(Credential.id, Credential.name, Org.name, Org.delete_calls_per_window, Org.window_s)
        .join(Org, Org.id == Credential.org_id)
        .order_by(Org.name, Credential.name)
    ).all()
    return [
        UserCalls(org_name, name, limit, window_s, [counts.get((cid, h), 0) for h in hours])
        for cid, name, org_name, limit, window_s in users
    ]


def charts(session: Session, now: datetime) -> tuple[list[Chart], list[Chart]]:
    """The dashboard's charts, in the order shown: the weekly trends, then one per execution
    user's last 24 hours."""
    figures = weekly(session, now)
    labels = [w.strftime("%d %b") for w in figures.weeks]
    span = f"the {len(labels)} weeks from {labels[0]} (weeks start on Monday, UTC)"
    made = [
        bar_chart(
            "chart-flow",
            "Requests opened and closed per week",
            f"Requests received and requests that reached an end state, per week, over {span}.",
            labels,
            [Series("Opened", figures.opened), Series("Closed", figures.closed)],
        ),
        bar_chart(
            "chart-time",
            "Median time to close, in days",
            f"Median days from receipt to completion of the requests completed each week, over {span}.",
            labels,
            [Series("Median days", figures.median_days)],
            unit="days",
        ),
        bar_chart(
            "chart-deadline",
            "Share completed within the legal deadline",
            f"Percentage of the requests completed each week that completed by their due date, over {span}.",
            labels,
            [Series("Within deadline", figures.within_deadline)],
            unit="%",
            y_max=100,
        ),
    ]
    hours = [h.strftime("%H:00") for h in hour_starts(now)]
    quota: list[Chart] = []
    for n, user in enumerate(calls_per_hour(session, now)):
        quota.append(
            bar_chart(
                f"chart-quota-{n}",
                f"Delete calls by {user.credential} ({user.org}) over 24 hours",
                f"Delete calls counted against the quota of execution user {user.credential} of "
                f"org {user.org}, per hour (UTC) over the last 24 hours; its limit is {user.limit} "
                f"calls per {user.window_s / 3600:g}-hour window, {sum(user.per_hour)} used.",
                hours,
                [Series("Delete calls", user.per_hour)],
            )
        )
    return made, quota
