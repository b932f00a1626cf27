"""Why a request is stuck, read from what the pipeline records, one cause at a time: a legal hold
(its own, or a shared record's), approval, permanent failures (failed records, a parked look-up,
no active execution user), transient ones retried by themselves (a look-up that has not finished,
a lost answer, a paused org or execution users, a batch held back) with when, an open Messaging
session (blocked, or a 412), an access read's activity window, and quota with its place and
earliest slot. An ended request says nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from erasure.core.models import (
    Credential,
    DeleteCall,
    DeleteCallStatus,
    DeleteRoute,
    ErasureRequest,
    Org,
    Regulation,
    RequestStatus,
    Source,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.pipeline.context import Tunables
from erasure.pipeline.models import Alert, ConversationActivity, HoldScope, HoldWait, LegalHold
from erasure.ui.queries import TimelineEntry
from erasure.ui.why_stuck import Cause, causes

NOW = datetime.now(UTC).replace(microsecond=0)
TUNABLES = Tunables(stall_s=120.0, orphan_after_s=45.0)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _request(
    session: Session, org: Org, status: RequestStatus, *, due_in: timedelta = timedelta(days=20)
) -> ErasureRequest:
    request = ErasureRequest(
        org_id=org.id,
        source=Source.UI,
        regulation=Regulation.GDPR,
        received_at=NOW - timedelta(days=10),
        due_at=NOW + due_in,
        status=status,
        updated_at=NOW,
    )
    session.add(request)
    session.flush()
    return request


def _target(
    session: Session,
    request: ErasureRequest,
    status: TargetStatus,
    *,
    record: str | None = None,
    **values: object,
) -> Target:
    target = Target(
        request_id=request.id,
        org_id=request.org_id,
        kind=TargetKind.MESSAGING_END_USER,
        salesforce_id=record or f"0PA{uuid.uuid4().hex[:15]}",
        status=status,
        due_at=request.due_at,
        **values,
    )
    session.add(target)
    session.flush()
    return target


def _credential(session: Session, org: Org, **values: object) -> Credential:
    credential = Credential(
        org=org,
        name=f"exec-{uuid.uuid4().hex[:6]}",
        client_id="stuck",
        client_secret_ciphertext=b"x",
        key_id="k",
        **values,
    )
    session.add(credential)
    session.flush()
    return credential


def _why(
    session: Session, request: ErasureRequest, entries: list[TimelineEntry] | None = None
) -> list[Cause]:
    session.expire_all()  # read what was written, as the page does
    fresh = session.get(ErasureRequest, request.id)
    assert fresh is not None
    return causes(session, fresh, entries or [], NOW, TUNABLES)


def _only(found: list[Cause], kind: str) -> Cause:
    matching = [c for c in found if c.kind == kind]
    assert len(matching) == 1, found
    return matching[0]


def test_on_legal_hold_says_until_when_and_who_may_release(db_session: Session, org: Org) -> None:
    request = _request(db_session, org, RequestStatus.ON_HOLD)
    ends = NOW + timedelta(days=30)
    hold = LegalHold(
        org_id=org.id,
        scope=HoldScope.ORG,
        reason_ciphertext=b"sealed",
        reason_key_id="k",
        ends_at=ends,
        placed_by="user:test",
    )
    db_session.add(hold)
    db_session.flush()
    db_session.add(HoldWait(request_id=request.id, hold_ids=[hold.id], held_at=NOW))
    db_session.flush()
    cause = _only(_why(db_session, request), "legal_hold")
    assert (
        cause.what
        == f"On legal hold: 1 hold(s) stop its deletion until {_when(ends)} at the latest."
    )
    assert "override" in cause.next_step and "Legal holds page" in cause.next_step


def test_a_record_shared_with_a_held_request_waits_for_that_hold(
    db_session: Session, org: Org
) -> None:
    held = _request(db_session, org, RequestStatus.ON_HOLD)
    mine = _request(db_session, org, RequestStatus.DELETING)
    record = f"0PA{uuid.uuid4().hex[:15]}"
    _target(db_session, held, TargetStatus.PENDING, record=record)
    _target(db_session, mine, TargetStatus.PENDING, record=record)
    cause = _only(_why(db_session, mine), "legal_hold")
    assert cause.what.startswith("1 of its record(s) are also records of another request")


def test_waiting_for_approval(db_session: Session, org: Org) -> None:
    request = _request(db_session, org, RequestStatus.AWAITING_APPROVAL)
    assert [c.kind for c in _why(db_session, request)] == ["approval"]


def test_failed_records_are_permanent_and_retry_is_the_next_step(
    db_session: Session, org: Org
) -> None:
    request = _request(db_session, org, RequestStatus.FAILED)
    reason = "Salesforce refused the delete call (INVALID_ID_FIELD)"
    _target(db_session, request, TargetStatus.FAILED, failure_reason=reason)
    _target(db_session, request, TargetStatus.FAILED, failure_reason=reason)
    _target(db_session, request, TargetStatus.DELETED)
    cause = _only(_why(db_session, request), "permanent")
    assert cause.what == f"2 record(s) failed and will not be tried again by themselves: {reason}."
    assert "Retry failed records" in cause.next_step and cause.retry


def test_a_parked_look_up_is_permanent_until_retried(db_session: Session, org: Org) -> None:
    request = _request(db_session, org, RequestStatus.RESOLVING)
    request.updated_at = NOW - timedelta(hours=2)
    db_session.add(
        Alert(
            kind="parked_message",
            request_id=request.id,
            message="erasure.resolve parked after too many deliveries; retry the request",
        )
    )
    db_session.flush()
    found = _why(db_session, request)
    assert [c.kind for c in found] == ["permanent"]  # not "will be retried": it will not
    assert "too many deliveries" in found[0].what and found[0].retry
    assert "Retry the look-up" in found[0].next_step


def test_a_look_up_that_has_not_finished_is_retried_by_the_sweeper(
    db_session: Session, org: Org
) -> None:
    request = _request(db_session, org, RequestStatus.RESOLVING)
    since = NOW - timedelta(seconds=100)
    request.updated_at = since
    db_session.flush()
    cause = _only(_why(db_session, request), "transient")
    assert _when(since) in cause.what
    assert f"tried again by {_when(since + timedelta(seconds=120))}" in cause.next_step
    request.updated_at = NOW - timedelta(seconds=10)  # just started: not stuck
    db_session.flush()
    assert _why(db_session, request) == []


def test_a_lost_answer_is_reconciled_from_the_logs(db_session: Session, org: Org) -> None:
    credential = _credential(db_session, org)
    request = _request(db_session, org, RequestStatus.DELETING)
    finished = NOW - timedelta(seconds=20)
    call = DeleteCall(
        org_id=org.id,
        credential_id=credential.id,
        route=DeleteRoute.PARTICIPANTS,
        status=DeleteCallStatus.AMBIGUOUS,
        ids_count=1,
        http_status=503,
        sent_at=finished - timedelta(seconds=5),
        finished_at=finished,
    )
    db_session.add(call)
    db_session.flush()
    _target(db_session, request, TargetStatus.BATCHED, delete_call_id=call.id, leads_deletion=True)
    cause = _only(_why(db_session, request), "transient")
    assert cause.what.startswith("The answer to the delete call for 1 record(s) was lost")
    assert f"from {_when(finished + timedelta(seconds=45))}" in cause.next_step


def test_a_paused_org_and_paused_execution_users_are_retried_at_their_end(
    db_session: Session, org: Org
) -> None:
    credential = _credential(db_session, org, paused_until=NOW + timedelta(minutes=7))
    request = _request(db_session, org, RequestStatus.DELETING)
    _target(db_session, request, TargetStatus.PENDING)
    cause = _only(_why(db_session, request), "transient")
    assert "Every execution user is paused" in cause.what
    assert f"resumes at {_when(credential.paused_until)}" in cause.next_step  # type: ignore[arg-type]

    org.paused_until = NOW + timedelta(minutes=5)
    org.paused_reason = "404 from the engagement API: API toggle off, wrong path or bad token"
    db_session.flush()
    cause = _only(_why(db_session, request), "transient")
    assert cause.what.startswith(f"The org is paused until {_when(org.paused_until)}: 404")
    assert "erasure salesforce check" in cause.next_step


def test_no_active_execution_user_is_permanent(db_session: Session, org: Org) -> None:
    _credential(db_session, org, is_active=False)
    request = _request(db_session, org, RequestStatus.DELETING)
    _target(db_session, request, TargetStatus.PENDING)
    cause = _only(_why(db_session, request), "permanent")
    assert cause.what == "The org has no active execution user, so nothing can be sent."
    assert not cause.retry


def test_a_batch_held_back_says_until_when(db_session: Session, org: Org) -> None:
    _credential(db_session, org)
    request = _request(db_session, org, RequestStatus.DELETING)
    until = NOW + timedelta(minutes=4)
    _target(db_session, request, TargetStatus.PENDING, next_check_at=until)
    cause = _only(_why(db_session, request), "transient")
    assert cause.what.startswith(f"1 record(s) are held back until {_when(until)}")


def test_a_log_that_stays_non_final_points_to_salesforce_setup(
    db_session: Session, org: Org
) -> None:
    request = _request(db_session, org, RequestStatus.CONFIRMING)
    _target(db_session, request, TargetStatus.REQUESTED, log_id="0Xa000000000001")
    message = (
        "a deletion has no final ConversationApiLog status 25 h after its call (last status: "
        "IN_PROGRESS); it is still polled: check it in Salesforce Setup"
    )
    db_session.add(Alert(kind="target_not_final", request_id=request.id, message=message))
    db_session.flush()
    cause = _only(_why(db_session, request), "transient")
    assert cause.what == f"Salesforce has not finished a deletion it accepted: {message}."
    assert "Salesforce Setup" in cause.next_step


def test_an_open_messaging_session_blocks_until_it_ends(db_session: Session, org: Org) -> None:
    request = _request(db_session, org, RequestStatus.DELETING)
    check = NOW + timedelta(minutes=3)
    _target(db_session, request, TargetStatus.BLOCKED_OPEN_SESSION, next_check_at=check)
    _target(db_session, request, TargetStatus.BLOCKED_OPEN_SESSION, next_check_at=check)
    cause = _only(_why(db_session, request), "open_session")
    assert cause.what.startswith("2 record(s) belong to an open Messaging session")
    assert "412" in cause.what
    assert f"checks the session again at {_when(check)}" in cause.next_step


def test_a_412_on_the_last_call_is_an_open_session_too(db_session: Session, org: Org) -> None:
    _credential(db_session, org)
    request = _request(db_session, org, RequestStatus.DELETING)
    _target(db_session, request, TargetStatus.PENDING)
    returned = TimelineEntry(
        at=NOW.isoformat(), kind="targets.returned", index=None, data={"reason": "open_session"}
    )
    cause = _only(_why(db_session, request, [returned]), "open_session")
    assert cause.what == (
        "Salesforce answered 412 to its last delete call: a conversation was active."
    )


def test_an_access_read_makes_records_wait_for_the_activity_window(
    db_session: Session, org: Org
) -> None:
    _credential(db_session, org)
    request = _request(db_session, org, RequestStatus.DELETING)
    target = _target(db_session, request, TargetStatus.PENDING)
    until = NOW + timedelta(minutes=25)
    db_session.add(
        ConversationActivity(org_id=org.id, salesforce_id=target.salesforce_id, active_until=until)
    )
    db_session.flush()
    cause = _only(_why(db_session, request), "activity_window")
    assert "read for an access request" in cause.what and _when(until) in cause.what
    assert cause.next_step == f"Nothing: they are sent after {_when(until)} by themselves."


def test_waiting_for_quota_gives_the_place_and_earliest_slot(db_session: Session, org: Org) -> None:
    credential = _credential(db_session, org)
    oldest = NOW - timedelta(minutes=30)
    for n in range(org.delete_calls_per_window):
        db_session.add(
            DeleteCall(
                org_id=org.id,
                credential_id=credential.id,
                route=DeleteRoute.PARTICIPANTS,
                status=DeleteCallStatus.ACCEPTED,
                ids_count=1,
                http_status=202,
                sent_at=oldest + timedelta(seconds=n),
                finished_at=oldest + timedelta(seconds=n),
            )
        )
    earlier = _request(db_session, org, RequestStatus.DELETING, due_in=timedelta(days=2))
    for _ in range(3):
        _target(db_session, earlier, TargetStatus.PENDING)
    mine = _request(db_session, org, RequestStatus.DELETING)
    _target(db_session, mine, TargetStatus.PENDING)
    cause = _only(_why(db_session, mine), "quota")
    slot = oldest + timedelta(seconds=org.window_s)
    assert cause.what == (
        "Waiting for delete quota: its first record is number 4 in the org's queue (3 record(s) "
        f"of requests with earlier deadlines go first, {org.max_ids_per_call} a call), and the "
        f"earliest slot for it is {_when(slot)}."
    )
    assert "adds an execution user" in cause.next_step


@pytest.mark.parametrize(
    "status", [RequestStatus.COMPLETED, RequestStatus.CANCELLED, RequestStatus.REJECTED]
)
def test_an_ended_request_is_not_stuck(
    db_session: Session, org: Org, status: RequestStatus
) -> None:
    request = _request(db_session, org, status)
    _target(db_session, request, TargetStatus.FAILED, failure_reason="whatever")
    assert _why(db_session, request) == []
