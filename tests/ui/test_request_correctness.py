"""What a request page must get right: the deadline runs from the day the letter came, an overdue
request is not extended without a warning, notes survive a form error, alerts end when their
cause does, and an ended request predicts nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import deadlines
from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, Regulation
from erasure.pipeline.models import Alert
from erasure.pipeline.states import raise_alert
from tests.support.console import SignedIn

PHONE = "+14155552671"


def _submit(client, token: str, **fields: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    response = client.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr", **fields},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return uuid.UUID(response.headers["Location"].rsplit("/", 1)[-1])


def test_the_deadline_runs_from_the_received_on_date(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    form = client.get("/ui/requests/new").get_data(as_text=True)
    assert 'name="received_on"' in form and 'type="date"' in form
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).date()
    request_id = _submit(client, token, received_on=ten_days_ago.isoformat())
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None
    assert stored.received_at.astimezone(UTC).date() == ten_days_ago
    received = datetime.combine(ten_days_ago, datetime.min.time(), tzinfo=UTC)
    assert stored.due_at == deadlines.due_at(Regulation.GDPR, received)
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    refused = client.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr", "received_on": future},
    )
    assert refused.status_code == 422 and "in the future" in refused.get_data(as_text=True)


def test_notes_survive_a_validation_error_but_identifiers_do_not(
    signed_in: SignedIn, org: Org
) -> None:
    client, token = signed_in(Role.OFFICER)
    bad = client.post(
        "/ui/requests/new",
        data={
            "csrf_token": token,
            "phone": "not-a-phone-77",
            "regulation": "gdpr",
            "notes": "letter scanned to the DPO inbox",
            "received_on": "2026-11-20",
        },
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "letter scanned to the DPO inbox</textarea>" in html
    assert 'value="2026-11-20"' in html
    assert "not-a-phone-77" not in html


def test_extending_an_overdue_request_asks_first(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    request_id = _submit(client, token)
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None
    # A letter that came in long ago: the legal deadline has passed.
    stored.received_at = datetime.now(UTC) - timedelta(days=40)
    stored.due_at = deadlines.due_at(stored.regulation, stored.received_at)
    db_session.flush()
    due = stored.due_at
    page = client.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "already overdue" in page
    first = client.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "complex case"},
    )
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "overdue" in html and 'name="confirm"' in html
    assert stored.due_at == due  # nothing changed yet
    confirmed = client.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "complex case", "confirm": "1"},
    )
    assert confirmed.status_code == 303
    db_session.refresh(stored)
    assert stored.due_at > due


def test_extension_and_cancel_reasons_are_shown_to_note_readers(
    signed_in: SignedIn, org: Org
) -> None:
    officer, token = signed_in(Role.OFFICER)
    request_id = _submit(officer, token, notes="first note")
    officer.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "waiting on the vendor", "confirm": "1"},
    )
    officer.post(
        f"/ui/requests/{request_id}/cancel",
        data={"csrf_token": token, "reason": "subject withdrew", "confirm": "1"},
    )
    page = officer.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert 'id="extension-reasons"' in page and "waiting on the vendor" in page
    assert "subject withdrew" in page and "first note" in page
    assert (
        '(officer) cancelled the request: <q class="reason">subject withdrew</q></span>' in page
    )  # its timeline line
    approver, _ = signed_in(Role.APPROVER)
    other = approver.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "waiting on the vendor" not in other and "subject withdrew" not in other
    assert "not shown to your role" in other


def test_an_extended_request_is_no_longer_at_risk_on_the_dashboard(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    request_id = _submit(client, token)
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None
    stored.is_at_risk = True
    raise_alert(
        db_session,
        kind="deadline_at_risk",
        message="predicted to finish too close to (or after) its deadline",
        org_id=org.id,
        request_id=request_id,
    )
    db_session.flush()
    assert "deadline_at_risk" in client.get("/ui/").get_data(as_text=True)
    client.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "more time", "confirm": "1"},
    )
    alert = db_session.scalar(select(Alert).where(Alert.request_id == request_id))
    assert alert is not None and alert.resolved_at is not None
    assert "deadline_at_risk" not in client.get("/ui/").get_data(as_text=True)


def test_a_cancelled_request_predicts_no_completion(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    request_id = _submit(client, token)
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None
    stored.predicted_completion_at = datetime.now(UTC) + timedelta(days=2)
    stored.is_at_risk = True
    raise_alert(
        db_session,
        kind="deadline_at_risk",
        message="predicted to finish too close to (or after) its deadline",
        request_id=request_id,
    )
    db_session.flush()
    client.post(
        f"/ui/requests/{request_id}/cancel",
        data={"csrf_token": token, "reason": "duplicate letter", "confirm": "1"},
    )
    db_session.refresh(stored)
    assert stored.predicted_completion_at is None and not stored.is_at_risk
    page = client.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert 'id="predicted"' not in page
    open_alerts = db_session.scalars(
        select(Alert).where(Alert.request_id == request_id, Alert.resolved_at.is_(None))
    ).all()
    assert open_alerts == []


def test_a_ticket_reference_links_to_its_url(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.OFFICER)
    request_id = _submit(
        client,
        token,
        reference_system="jira",
        reference_id="PRIV-7",
        reference_url="https://tickets.example.org/browse/PRIV-7",
    )
    page = client.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert '<a id="ticket" href="https://tickets.example.org/browse/PRIV-7"' in page


def test_the_timeline_reads_as_sentences_with_the_raw_leaf_behind_a_toggle(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    request_id = _submit(client, token)
    client.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "zq private reason", "confirm": "1"},
    )
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None
    page = client.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    timeline = page.split("<h2>Timeline")[1]
    # A reader of reasons sees the extension's reason in its sentence (matched by the SHA-256
    # its leaf holds); the leaf itself holds no reason.
    assert (
        f"Test officer (officer) extended the deadline to {stored.due_at:%Y-%m-%d}: "
        '<q class="reason">zq private reason</q></span>' in timeline
    )
    assert "Request received (from ui); due " in timeline
    assert "<details><summary>Audit leaf" in timeline and "request.extended</summary>" in timeline
    raw = timeline.split("request.extended</summary>", 1)[1].split("</details>", 1)[0]
    assert "zq private reason" not in raw and "reason_sha256=" in raw
    # A role that may not read reasons gets the sentence without it.
    approver, _ = signed_in(Role.APPROVER)
    other = approver.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert f"extended the deadline to {stored.due_at:%Y-%m-%d}</span>" in other
    assert "zq private reason" not in other
