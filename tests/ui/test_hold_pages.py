"""The console's legal holds through the test client: only approvers and admins manage holds; the
form places a subject hold without ever showing the identifier again; a deleting request it
covers stops, its page says why (the matter shown to approvers only) and offers the override;
the override and the release work from their buttons."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.accounts.models import Role
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    Org,
    Regulation,
    RequestStatus,
    Source,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.pipeline.models import LegalHold
from tests.ui.conftest import SignedIn, csrf_of

PHONE = "+14155552671"
MATTER = "Matter 2026-77 concerning Ana Example"


def deleting_request(db_session: Session, org: Org, protection: workflow.Protection) -> uuid.UUID:
    """A request past resolve: deleting, with one pending target."""
    request = workflow.submit_request(
        db_session,
        workflow.Submission(
            identifiers=[workflow.Identifier(IdentifierKind.PHONE, PHONE)],
            regulation=Regulation.GDPR,
            source=Source.API,
            org=org.name,
        ),
        protection=protection,
        default_org=None,
    )
    request.status = RequestStatus.DELETING
    now = datetime.now(UTC)
    db_session.add(
        Target(
            request_id=request.id,
            org_id=org.id,
            kind=TargetKind.MESSAGING_END_USER,
            salesforce_id="0PAxx0000000001AAA",
            status=TargetStatus.PENDING,
            due_at=request.due_at,
            created_at=now,
            updated_at=now,
        )
    )
    db_session.flush()
    return request.id


def hold_form(token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "scope": "subject",
        "kind": "phone",
        "value": PHONE,
        "reason": MATTER,
        "ends_on": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
    } | fields


def test_only_approvers_and_admins_manage_holds(signed_in: SignedIn) -> None:
    for role in (Role.OFFICER, Role.AUDITOR):
        client, _ = signed_in(role)
        assert client.get("/ui/holds").status_code == 403
        assert "Legal holds" not in client.get("/ui/").get_data(as_text=True)
    for role in (Role.APPROVER, Role.ADMIN):
        client, _ = signed_in(role)
        page = client.get("/ui/holds")
        assert page.status_code == 200
        assert "Place a hold" in page.get_data(as_text=True)


def test_an_invalid_hold_is_refused_without_echoing(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.APPROVER)
    bad = client.post("/ui/holds", data=hold_form(token, value="+1415-not-a-phone"))
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "not a valid phone" in html
    assert "not-a-phone" not in html


def test_a_hold_stops_a_request_whose_page_says_why_until_overridden(
    signed_in: SignedIn, org: Org, db_session: Session, protection: workflow.Protection
) -> None:
    request_id = deleting_request(db_session, org, protection)
    approver, token = signed_in(Role.APPROVER)
    placed = approver.post("/ui/holds", data=hold_form(token, org=org.name))
    assert placed.status_code == 303
    listing = approver.get("/ui/holds").get_data(as_text=True)
    assert MATTER in listing and PHONE not in listing and str(request_id) in listing
    assert db_session.get(ErasureRequest, request_id).status is RequestStatus.ON_HOLD  # type: ignore[union-attr]

    page = approver.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "Stopped before deletion" in page and MATTER in page
    assert "Override hold" in page
    officer, _ = signed_in(Role.OFFICER)
    seen = officer.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "Stopped before deletion" in seen
    assert MATTER not in seen and "Override hold" not in seen  # the matter is for approvers

    overridden = approver.post(
        f"/ui/requests/{request_id}/override-hold",
        data={"csrf_token": csrf_of(page), "reason": "Counsel: outside the matter"},
    )
    assert overridden.status_code == 303
    db_session.expire_all()
    assert db_session.get(ErasureRequest, request_id).status is RequestStatus.DELETING  # type: ignore[union-attr]
    after = approver.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "Earlier waits" in after and "(override)" in after


def test_the_release_button_ends_a_hold(signed_in: SignedIn, org: Org, db_session: Session) -> None:
    client, token = signed_in(Role.ADMIN)
    client.post("/ui/holds", data=hold_form(token, scope="org", value="", org=org.name))
    hold = db_session.scalar(select(LegalHold).where(LegalHold.org_id == org.id))
    assert hold is not None
    released = client.post(f"/ui/holds/{hold.id}/release", data={"csrf_token": token})
    assert released.status_code == 303
    db_session.refresh(hold)
    assert hold.released_at is not None
    assert "released" in client.get("/ui/holds").get_data(as_text=True)
