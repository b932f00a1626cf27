"""Why an open request is not moving, in words, with the next step: a read model over what the
pipeline already records (the request's state, its targets' states and failure reasons, open
alerts, legal holds, delete calls, the org's and execution users' pauses, the quota and the
access reads' activity window). Nothing here writes.

Each cause says what holds the request and what a person should do, if anything:

- `legal_hold`: it (or a request sharing its records) waits on a legal hold;
- `approval`: its org requires an approver;
- `permanent`: records Salesforce failed for good, a look-up parked after repeated failures, or
  no active execution user: nothing goes on until a person acts;
- `transient`: a failure erasure retries by itself (a lost answer, a paused org or execution
  user, a look-up that has not finished, a batch held back), with when;
- `open_session`: records in an open Messaging session (Salesforce answers 412);
- `activity_window`: records an access request just read, active in Salesforce for a while;
- `quota`: records waiting their turn for delete quota, with their place and earliest slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from erasure.core.models import (
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    ErasureRequest,
    ErasureScope,
    RequestStatus,
    Target,
    TargetStatus,
)
from erasure.pipeline import holds
from erasure.pipeline.context import Tunables
from erasure.pipeline.models import Alert, ConversationActivity, LegalHold
from erasure.pipeline.quota import pool_quota, send_times
from erasure.pipeline.sweep import PARKED, RESOLVE_STATES
from erasure.ui.queries import UNSENT, TimelineEntry

#: The confirm step's alert for a log that stays non-final (erasure.pipeline.confirm).
NOT_FINAL = "target_not_final"
#: A look-up younger than this is simply under way, not stuck.
QUIET = timedelta(minutes=1)
#: A slot sooner than this is "now": the record goes with the next calls.
SOON = timedelta(minutes=1)
_ENDED = (
    RequestStatus.COMPLETED,
    RequestStatus.COMPLETED_NO_DATA,
    RequestStatus.CANCELLED,
    RequestStatus.REJECTED,
)


@dataclass(frozen=True)
class Cause:
    kind: str
    what: str
    next_step: str
    #: The officer's Retry is the next step (a parked look-up, failed records).
    retry: bool = False


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _targets(
    session: Session, request: ErasureRequest, *where: ColumnElement[bool]
) -> list[Target]:
    return list(
        session.scalars(
            select(Target).where(Target.request_id == request.id, *where).order_by(Target.id)
        )
    )


def _hold(session: Session, request: ErasureRequest, now: datetime) -> list[Cause]:
    if request.status is RequestStatus.ON_HOLD:
        wait = holds.open_wait(session, request.id)
        ids = list(wait.hold_ids) if wait else []
        ends = session.scalar(
            select(func.max(LegalHold.ends_at)).where(LegalHold.id.in_(ids), holds.is_active(now))
        )
        until = f" until {_when(ends)} at the latest" if ends else ""
        return [
            Cause(
                "legal_hold",
                f"On legal hold: {len(ids)} hold(s) stop its deletion{until}.",
                "Nothing, if the hold must stand: it goes on by itself when its holds end or are "
                "released. An approver can release a hold on the Legal holds page, or override "
                "it on this page with a reason.",
            )
        ]
    shared = session.scalar(
        select(func.count())
        .select_from(Target)
        .where(
            Target.request_id == request.id,
            Target.status == TargetStatus.PENDING,
            holds.record_held(),
        )
    )
    if not shared:
        return []
    return [
        Cause(
            "legal_hold",
            f"{shared} of its record(s) are also records of another request that is on legal "
            "hold: they are not deleted for anyone while that hold stands.",
            "Nothing, if the hold must stand: they go when that request's hold ends or is "
            "released (see the Legal holds page).",
        )
    ]


def _approval(request: ErasureRequest) -> list[Cause]:
    if request.status is not RequestStatus.AWAITING_APPROVAL:
        return []
    return [
        Cause(
            "approval",
            "Waiting for approval: its org requires an approver before anything is deleted.",
            "An approver (or an admin) approves it on this page.",
        )
    ]


def _permanent(session: Session, request: ErasureRequest) -> list[Cause]:
    said: list[Cause] = []
    parked = session.scalar(
        select(Alert.message)
        .where(Alert.request_id == request.id, Alert.kind == PARKED, Alert.resolved_at.is_(None))
        .limit(1)
    )
    if parked:
        said.append(
            Cause(
                "permanent",
                "Looking up the subject's records in Salesforce failed again and again and was "
                f"stopped for a person ({parked}).",
                "Check the org's setup (Settings, Check token; or `erasure salesforce check`), "
                "then press Retry the look-up.",
                retry=True,
            )
        )
    failed = session.execute(
        select(Target.failure_reason, func.count())
        .where(Target.request_id == request.id, Target.status == TargetStatus.FAILED)
        .group_by(Target.failure_reason)
        .order_by(Target.failure_reason)
    ).all()
    for reason, count in failed:
        said.append(
            Cause(
                "permanent",
                f"{count} record(s) failed and will not be tried again by themselves: "
                f"{reason or 'no reason was given'}.",
                "Fix the cause in Salesforce (the ConversationApiLog ids below show what it "
                "recorded), then press Retry failed records. If the same failure comes back, "
                "raise it with your Salesforce admin with those log ids.",
                retry=True,
            )
        )
    return said


def _look_up(
    session: Session, request: ErasureRequest, now: datetime, tunables: Tunables
) -> list[Cause]:
    """A request before `deleting` whose look-up has not finished (and is not parked)."""
    if request.status not in RESOLVE_STATES or now - request.updated_at < QUIET:
        return []
    retry_by = request.updated_at + timedelta(seconds=tunables.stall_s)
    return [
        Cause(
            "transient",
            "Looking up its records in Salesforce has not finished since "
            f"{_when(request.updated_at)}: a try that failed (Salesforce or the network did "
            "not answer) is retried by itself.",
            f"Nothing yet: it is tried again by {_when(max(retry_by, now))} at the latest. If it "
            "keeps failing it is stopped for a person, and this page says so.",
        )
    ]


def _sessions(
    session: Session, request: ErasureRequest, entries: Sequence[TimelineEntry], now: datetime
) -> list[Cause]:
    blocked = _targets(session, request, Target.status == TargetStatus.BLOCKED_OPEN_SESSION)
    if blocked:
        checks = [t.next_check_at for t in blocked if t.next_check_at]
        # A check already due happens at the scheduler's next pass, within seconds.
        at = f" again at {_when(min(checks))}" if checks and min(checks) > now else " again shortly"
        return [
            Cause(
                "open_session",
                f"{len(blocked)} record(s) belong to an open Messaging session: Salesforce "
                "refuses (412) to delete a participant of an active conversation.",
                f"Nothing: erasure checks the session{at} and sends them once it has ended. To "
                "go sooner, have the agent end the conversation in Salesforce.",
            )
        ]
    returned = [e for e in entries if e.kind == "targets.returned"]
    pending = _targets(session, request, Target.status == TargetStatus.PENDING)
    if pending and returned and returned[-1].data.get("reason") == "open_session":
        return [
            Cause(
                "open_session",
                "Salesforce answered 412 to its last delete call: a conversation was active.",
                "Nothing: erasure checks the sessions before the next call and waits for them "
                "to end.",
            )
        ]
    return []


def _activity(session: Session, request: ErasureRequest, now: datetime) -> list[Cause]:
    row = session.execute(
        select(func.count(Target.id), func.max(ConversationActivity.active_until))
        .join(
            ConversationActivity,
            (ConversationActivity.org_id == Target.org_id)
            & (ConversationActivity.salesforce_id == Target.salesforce_id),
        )
        .where(
            Target.request_id == request.id,
            Target.status == TargetStatus.PENDING,
            ConversationActivity.active_until > now,
        )
    ).one()
    if not row[0]:
        return []
    return [
        Cause(
            "activity_window",
            f"{row[0]} record(s) were just read for an access request (a copy of the subject's "
            f"data): Salesforce treats them as active, and would refuse to delete them, until "
            f"{_when(row[1])}.",
            f"Nothing: they are sent after {_when(row[1])} by themselves.",
        )
    ]


def _lost_answers(
    session: Session, request: ErasureRequest, now: datetime, tunables: Tunables
) -> list[Cause]:
    calls = session.execute(
        select(DeleteCall.status, DeleteCall.sent_at, DeleteCall.finished_at, func.count())
        .join(Target, Target.delete_call_id == DeleteCall.id)
        .where(
            Target.request_id == request.id,
            Target.status == TargetStatus.BATCHED,
            DeleteCall.status.in_((DeleteCallStatus.AMBIGUOUS, DeleteCallStatus.SENDING)),
        )
        .group_by(DeleteCall.id)
    ).all()
    orphan = timedelta(seconds=tunables.orphan_after_s)
    lost = [
        (c, f or s) for c, s, f, _n in calls if c is DeleteCallStatus.AMBIGUOUS or s < now - orphan
    ]
    if not lost:
        return []
    asks = max(now, min(at + orphan for _c, at in lost))
    count = sum(n for c, s, _f, n in calls if c is DeleteCallStatus.AMBIGUOUS or s < now - orphan)
    return [
        Cause(
            "transient",
            f"The answer to the delete call for {count} record(s) was lost (Salesforce answered "
            "5xx, or did not answer in time): erasure never sends a record again blind.",
            f"Nothing: from {_when(asks)} erasure asks Salesforce's logs which of them were "
            "deleted, and sends the rest again.",
        )
    ]


def _not_final(session: Session, request: ErasureRequest) -> list[Cause]:
    """Sent, but Salesforce's log has stayed non-final for hours (the confirm step's alert)."""
    message = session.scalar(
        select(Alert.message)
        .where(
            Alert.request_id == request.id,
            Alert.kind == NOT_FINAL,
            Alert.resolved_at.is_(None),
        )
        .limit(1)
    )
    if not message:
        return []
    return [
        Cause(
            "transient",
            f"Salesforce has not finished a deletion it accepted: {message}.",
            "Look the ConversationApiLog ids below up in Salesforce Setup; erasure keeps "
            "polling, and the request goes on as soon as the log is final.",
        )
    ]


def _held_back(session: Session, request: ErasureRequest, now: datetime) -> list[Cause]:
    held = _targets(
        session, request, Target.status == TargetStatus.PENDING, Target.next_check_at > now
    )
    if not held:
        return []
    until = max(t.next_check_at for t in held if t.next_check_at)
    return [
        Cause(
            "transient",
            f"{len(held)} record(s) are held back until {_when(until)}: erasure formed a delete "
            "call it refused to send (a bug in erasure, reported to a person as an alert).",
            f"Nothing: they are planned again at {_when(until)}. Please report the alert.",
        )
    ]


def _senders(session: Session, request: ErasureRequest, now: datetime) -> list[Cause]:
    """The org and its execution users, for a request with records to send."""
    org = request.org
    if org.paused_until is not None and org.paused_until > now:
        return [
            Cause(
                "transient",
                f"The org is paused until {_when(org.paused_until)}: "
                f"{org.paused_reason or 'Salesforce refused its delete calls'}.",
                "An admin checks the org (`erasure salesforce check`: the Enhanced Messaging API "
                f"switched on, the path, the token). Sending resumes by itself at "
                f"{_when(org.paused_until)}.",
            )
        ]
    active = [c for c in org.credentials if c.is_active]
    if not active:
        return [
            Cause(
                "permanent",
                "The org has no active execution user, so nothing can be sent.",
                "An admin adds or re-activates an execution user under Settings.",
            )
        ]
    paused = [c.paused_until for c in active if c.paused_until and c.paused_until > now]
    if len(paused) == len(active):
        return [
            Cause(
                "transient",
                "Every execution user is paused (Salesforce answered 429, too many requests, "
                f"or refused a token) until {_when(min(paused))} at the earliest.",
                f"Nothing for a 429: sending resumes at {_when(min(paused))}. If Check token "
                "under Settings reports a refusal, an admin fixes that execution user.",
            )
        ]
    return []


def _quota(session: Session, request: ErasureRequest, now: datetime) -> list[Cause]:
    """Its place in the org's queue (earliest deadline first) mapped onto the quota."""
    first_due = session.scalar(
        select(func.min(Target.due_at)).where(
            Target.request_id == request.id, Target.status == TargetStatus.PENDING
        )
    )
    if first_due is None:
        return []
    org = request.org
    ahead = int(
        session.scalar(
            select(func.count())
            .select_from(Target)
            .where(
                Target.org_id == request.org_id,
                Target.status.in_(UNSENT),
                Target.request_id != request.id,
                Target.due_at < first_due,
            )
        )
        or 0
    )
    route = (
        DeleteRoute.CONVERSATIONS
        if request.scope is ErasureScope.CONVERSATIONS
        else DeleteRoute.PARTICIPANTS
    )
    quotas = list(pool_quota(session, org, route, now).values())
    times = send_times(
        quotas, calls=ahead // org.max_ids_per_call + 1, window_s=org.window_s, now=now
    )
    if not times or times[-1] - now < SOON:
        return []
    return [
        Cause(
            "quota",
            f"Waiting for delete quota: its first record is number {ahead + 1} in the org's "
            f"queue ({ahead} record(s) of requests with earlier deadlines go first, "
            f"{org.max_ids_per_call} a call), and the earliest slot for it is {_when(times[-1])}.",
            "Nothing: it is sent in its turn. To go sooner, an admin adds an execution user "
            "(each has its own quota); if the deadline cannot be met, extend it with a reason.",
        )
    ]


def causes(
    session: Session,
    request: ErasureRequest,
    entries: Sequence[TimelineEntry],
    now: datetime,
    tunables: Tunables,
) -> list[Cause]:
    """Every cause that holds the request now, most decisive first; empty for an ended request
    (a failed one keeps its permanent causes) or one that is simply moving."""
    if request.status in _ENDED:
        return []
    found = _hold(session, request, now) + _approval(request) + _permanent(session, request)
    if request.status is RequestStatus.FAILED:
        return found
    found += _look_up(session, request, now, tunables) if not found else []
    found += _sessions(session, request, entries, now) + _activity(session, request, now)
    found += _lost_answers(session, request, now, tunables) + _held_back(session, request, now)
    found += _not_final(session, request)
    if _targets(session, request, Target.status == TargetStatus.PENDING):
        senders = _senders(session, request, now)
        found += senders or _quota(session, request, now)
    return found
