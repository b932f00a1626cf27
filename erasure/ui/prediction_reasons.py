"""Why an open request's predicted completion is where it is, and how far it slipped: the facts
the prediction (erasure.pipeline.quota.predict_org) is made of, read for this request.

The prediction places the request's last unsent record in its org's backlog (earliest deadline
first) and maps that place onto the execution users' quota; so it moves later when records with
earlier deadlines arrive, when quota runs out or an execution user is paused, when the org is
paused, or while a record waits for an open Messaging session to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.core.models import DeleteRoute, ErasureRequest, Target, TargetStatus
from erasure.pipeline.quota import pool_quota, usable_credentials
from erasure.ui.queries import UNSENT, TimelineEntry

#: A later prediction by less than this is noise (the quota window moving), not a slip.
SLIP = timedelta(hours=1)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _slip(request: ErasureRequest, entries: Sequence[TimelineEntry]) -> str | None:
    """Against the prediction logged when the request was first flagged at risk."""
    first = next((e for e in entries if e.kind == "request.at_risk"), None)
    logged = first.data.get("predicted_completion_at") if first else None
    if not isinstance(logged, str) or request.predicted_completion_at is None:
        return None
    then = datetime.fromisoformat(logged.replace("Z", "+00:00"))
    late = request.predicted_completion_at - then
    if late < SLIP:
        return None
    amount = f"{late.days} day(s)" if late.days else f"{late.seconds // 3600} hour(s)"
    return (
        f"When it was first flagged at risk ({first.at[:10] if first else ''}) it was predicted to "
        f"finish {_when(then)}; it is now predicted {_when(request.predicted_completion_at)}, "
        f"{amount} later."
    )


def _backlog(session: Session, request: ErasureRequest) -> list[str]:
    said: list[str] = []
    own = session.execute(
        select(
            func.min(Target.due_at),
            func.count().filter(Target.status == TargetStatus.BLOCKED_OPEN_SESSION),
        ).where(Target.request_id == request.id, Target.status.in_(UNSENT))
    ).one()
    if own[0] is not None:
        ahead = session.scalar(
            select(func.count())
            .select_from(Target)
            .where(
                Target.org_id == request.org_id,
                Target.status.in_(UNSENT),
                Target.request_id != request.id,
                Target.due_at < own[0],
            )
        )
        if ahead:
            said.append(
                f"{ahead} record(s) of other requests with earlier deadlines are sent first "
                "(the earliest deadline goes first)."
            )
    if own[1]:
        said.append(
            f"{own[1]} of its record(s) wait for an open Messaging session to end: Salesforce "
            "refuses to delete a participant of an active session."
        )
    return said


def _capacity(session: Session, request: ErasureRequest, now: datetime) -> list[str]:
    org = request.org
    said: list[str] = []
    if org.paused_until is not None and org.paused_until > now:
        said.append(f"The org is paused until {_when(org.paused_until)}.")
    if not usable_credentials(org, now):
        said.append(
            "No execution user can send now: each is inactive, or paused after Salesforce "
            "answered 429 (too many requests)."
        )
        return said
    quotas = pool_quota(session, org, DeleteRoute.PARTICIPANTS, now)
    if sum(q.left for q in quotas.values()) == 0:
        frees = min((q.next_free_at for q in quotas.values() if q.next_free_at), default=None)
        said.append(
            "Every execution user's delete quota is used up"
            + (f"; the next call frees at {_when(frees)}." if frees else ".")
        )
    return said


def reasons(
    session: Session, request: ErasureRequest, entries: Sequence[TimelineEntry], now: datetime
) -> list[str]:
    """Sentences for the request page; empty for an ended request or one with no prediction."""
    if request.status.is_terminal or request.predicted_completion_at is None:
        return []
    slip = _slip(request, entries)
    return ([slip] if slip else []) + _backlog(session, request) + _capacity(session, request, now)
