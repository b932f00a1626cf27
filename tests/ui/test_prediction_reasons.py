"""Why a prediction is where it is, on the request page: how far it slipped since the request was
first flagged at risk, records with earlier deadlines ahead of it, records waiting on an open
Messaging session, a paused org, no usable execution user, or quota used up. An ended request
says nothing of the kind."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit import leaves
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
from tests.support.console import SignedIn


def _request(session: Session, org: Org, *, due: datetime, status: RequestStatus) -> ErasureRequest:
    request = ErasureRequest(
        org_id=org.id,
        source=Source.UI,
        regulation=Regulation.GDPR,
        received_at=due - timedelta(days=30),
        due_at=due,
        status=status,
    )
    session.add(request)
    session.flush()
    return request


def _target(session: Session, request: ErasureRequest, status: TargetStatus) -> None:
    session.add(
        Target(
            request_id=request.id,
            org_id=request.org_id,
            kind=TargetKind.MESSAGING_END_USER,
            salesforce_id=f"0PA{uuid.uuid4().hex[:15]}",
            status=status,
            due_at=request.due_at,
        )
    )


def _why(client_html: str) -> list[str]:
    block = client_html.split('<ul id="why-predicted">', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(item) for item in re.findall(r"<li>([^<]+)</li>", block)]


def test_request_page_says_why_its_prediction_slipped(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    now = datetime.now(UTC)
    mine = _request(db_session, org, due=now + timedelta(days=5), status=RequestStatus.DELETING)
    _target(db_session, mine, TargetStatus.PENDING)
    _target(db_session, mine, TargetStatus.BLOCKED_OPEN_SESSION)
    other = _request(db_session, org, due=now + timedelta(days=1), status=RequestStatus.DELETING)
    _target(db_session, other, TargetStatus.PENDING)
    _target(db_session, other, TargetStatus.BATCHED)
    first_predicted = now + timedelta(days=2)
    leaves.append(
        db_session,
        kind="request.at_risk",
        request_id=mine.id,
        at=now - timedelta(days=1),
        data={
            "predicted_completion_at": leaves.timestamp(first_predicted),
            "due_at": leaves.timestamp(mine.due_at),
        },
    )
    mine.predicted_completion_at = first_predicted + timedelta(days=8, hours=2)
    mine.is_at_risk = True
    org.paused_until = now + timedelta(hours=3)
    db_session.flush()
    client, _ = signed_in(Role.OFFICER)

    said = _why(client.get(f"/ui/requests/{mine.id}").get_data(as_text=True))

    assert said[0].endswith(
        "it is now predicted "
        f"{mine.predicted_completion_at.strftime('%Y-%m-%d %H:%M UTC')}, 8 day(s) later."
    )
    assert f"predicted to finish {first_predicted.strftime('%Y-%m-%d %H:%M UTC')}" in said[0]
    assert said[1].startswith("2 record(s) of other requests with earlier deadlines are sent first")
    assert said[2].startswith("1 of its record(s) wait for an open Messaging session to end")
    assert said[3] == f"The org is paused until {org.paused_until.strftime('%Y-%m-%d %H:%M UTC')}."
    assert said[4].startswith("No execution user can send now")

    # With an execution user whose quota is spent, the page says when the next call frees.
    org.paused_until = None
    credential = Credential(
        org=org, name="exec-why", client_id="why", client_secret_ciphertext=b"x", key_id="k"
    )
    db_session.add(credential)
    db_session.flush()
    oldest = now - timedelta(minutes=30)
    for n in range(org.delete_calls_per_window):
        db_session.add(
            DeleteCall(
                org_id=org.id,
                credential_id=credential.id,
                route=DeleteRoute.PARTICIPANTS,
                status=DeleteCallStatus.ACCEPTED,
                ids_count=1,
                http_status=200,
                sent_at=oldest + timedelta(seconds=n),
                finished_at=oldest + timedelta(seconds=n),
            )
        )
    db_session.flush()
    said = _why(client.get(f"/ui/requests/{mine.id}").get_data(as_text=True))
    frees = oldest + timedelta(seconds=org.window_s)
    assert said[-1] == (
        "Every execution user's delete quota is used up; the next call frees at "
        f"{frees.strftime('%Y-%m-%d %H:%M UTC')}."
    )
    assert not any("paused" in line for line in said)


def test_an_ended_or_unpredicted_request_gives_no_reasons(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    now = datetime.now(UTC)
    cancelled = _request(
        db_session, org, due=now + timedelta(days=5), status=RequestStatus.CANCELLED
    )
    received = _request(db_session, org, due=now + timedelta(days=5), status=RequestStatus.RECEIVED)
    db_session.flush()
    client, _ = signed_in(Role.OFFICER)
    for request in (cancelled, received):
        page = client.get(f"/ui/requests/{request.id}").get_data(as_text=True)
        assert 'id="why-predicted"' not in page
