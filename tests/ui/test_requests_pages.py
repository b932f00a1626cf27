"""Request pages through the test client: new request validation, list filters and CSV export
without personal data, subject search by POST, bulk CSV upload (row report, idempotent re-upload),
the certificate download, and the auditor's verification run."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import ErasureRequest, Org, RequestStatus
from tests.support.audited_requests import checkpoint_now, complete
from tests.support.console import SignedIn

PHONE = "+14155552671"
EMAIL = "canary.person@example.com"


def test_new_request_validates_without_echoing(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.OFFICER)
    bad = client.post(
        "/ui/requests/new",
        data={
            "csrf_token": token,
            "phone": "12345-not-a-phone",
            "email": EMAIL,
            "regulation": "gdpr",
        },
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "subject.phone" in html
    assert "12345-not-a-phone" not in html and EMAIL not in html


def test_list_filters_search_and_csv_hold_no_personal_data(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    created = client.post(
        "/ui/requests/new",
        data={
            "csrf_token": token,
            "email": EMAIL,
            "regulation": "ccpa",
            "reference_system": "jira",
            "reference_id": "=HYPERLINK(1)",
        },
    )
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    detail = client.get(created.headers["Location"]).get_data(as_text=True)
    assert EMAIL not in detail and "pseudonyms only" in detail
    listing = client.get("/ui/requests?status=received&source=ui&at_risk=").get_data(as_text=True)
    assert request_id in listing and EMAIL not in listing
    assert request_id not in client.get("/ui/requests?status=completed").get_data(as_text=True)
    exported = client.get("/ui/requests.csv?status=received").get_data(as_text=True)
    assert request_id in exported and EMAIL not in exported
    assert "'=HYPERLINK(1)" in exported  # a formula is neutralised for spreadsheets
    found = client.post(
        "/ui/subject-search", data={"csrf_token": token, "kind": "email", "value": EMAIL.upper()}
    )
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and request_id in html
    assert EMAIL not in html and EMAIL.upper() not in html


def _upload(client, token: str, text: str):  # type: ignore[no-untyped-def]
    """Upload, then confirm the check (when it offers anything to submit)."""
    preview = client.post(
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "requests.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    if 'action="/ui/requests/bulk/confirm"' not in html:
        return preview
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html))
    return client.post("/ui/requests/bulk/confirm", data=fields, content_type="multipart/form-data")


def test_bulk_upload_reports_rejected_rows_and_is_idempotent(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    rows = ["phone,email,regulation,reference_system,reference_id"]
    for n in range(600):
        rows.append(f"+1415555{n:04d},,gdpr,,")  # no reference: identified by a keyed hash
    rows.append("not-a-phone,,gdpr,,")  # row 602
    rows.append(",bad@@example,ccpa,jira,T-1")  # row 603
    rows.append("+14155559999,,nonsense,,")  # row 604
    rows.append("+14155558888,,gdpr,jira,T-2")
    rows.append("+14155558887,,gdpr,jira,T-2")  # row 606: same reference twice in the file
    text = "\n".join(rows) + "\n"

    def count() -> int:
        return int(
            db_session.scalar(
                select(func.count())
                .select_from(ErasureRequest)
                .where(ErasureRequest.org_id == org.id)
            )
            or 0
        )

    before = count()
    first = _upload(client, token, text)
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "601 of 601 rows done" in html  # progress, chunk by chunk
    assert "<strong>601</strong> request(s) submitted" in html
    for row in ("602", "603", "604", "606"):
        assert f"<td>{row}</td>" in html
    assert "not-a-phone" not in html and "bad@@example" not in html
    assert count() == before + 601
    again = _upload(client, token, text).get_data(as_text=True)
    assert "<strong>0</strong> will be submitted" in again  # the check sees them all done
    assert "<strong>601</strong> were already submitted earlier" in again
    assert count() == before + 601


def test_bulk_upload_rejects_a_bad_header(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.ADMIN)
    html = _upload(client, token, "phone,ssnzq\n+14155550100,123\n").get_data(as_text=True)
    assert "unknown column (column 2)" in html and "<strong>0</strong>" in html
    assert "ssnzq" not in html  # a header cell is client input too: never echoed


def test_bulk_upload_without_a_header_row_shows_no_value(signed_in: SignedIn, org: Org) -> None:
    # The first row is taken as the header: its cells are a subject's identifiers.
    client, token = signed_in(Role.OFFICER)
    text = "+14155550123,canary.csv@example.com,gdpr\n+14155550124,,gdpr\n"
    response = _upload(client, token, text)
    html = response.get_data(as_text=True)
    assert "4155550123" not in html and "canary.csv" not in html
    assert "no header row" in html and "<strong>0</strong>" in html


def test_certificate_download_and_auditor_verification(
    signed_in: SignedIn, org: Org, db_session: Session, signing_key: SigningKey
) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new", data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr"}
    )
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    complete(db_session, request_id, org)
    checkpoint_now(db_session, signing_key)
    auditor, audit_token = signed_in(Role.AUDITOR)
    page = auditor.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert "Download the certificate of erasure" in page and "Cancel request" not in page
    certificate = auditor.get(f"/ui/requests/{request_id}/certificate")
    assert certificate.status_code == 200
    assert verify_certificate(certificate.get_data(), signing_key.verifier()).ok
    result = auditor.post("/ui/audit/verify", data={"csrf_token": audit_token}).get_data(
        as_text=True
    )
    assert "Verified: every check passed." in result
    uploaded = auditor.post(
        "/ui/audit/verify-certificate",
        data={
            "csrf_token": audit_token,
            "certificate": (io.BytesIO(certificate.get_data()), "c.json"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "Verified: every check passed." in uploaded
    tampered = certificate.get_data().replace(b'"deleted"', b'"failed"', 1)
    bad = auditor.post(
        "/ui/audit/verify-certificate",
        data={"csrf_token": audit_token, "certificate": (io.BytesIO(tampered), "c.json")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "Not verified: what follows could not be proven." in bad
    erasure_request = db_session.get(ErasureRequest, uuid.UUID(request_id))
    assert erasure_request is not None and erasure_request.status is RequestStatus.COMPLETED


@pytest.mark.usefixtures("org")
def test_admin_creates_api_key_shown_once(signed_in: SignedIn) -> None:
    admin, token = signed_in(Role.ADMIN)
    response = admin.post(
        "/ui/settings/api-keys", data={"csrf_token": token, "name": "Jira", "role": "integration"}
    )
    html = response.get_data(as_text=True)
    assert 'id="new-key">ek_' in html
    assert (
        "ek_" not in admin.get("/ui/settings").get_data(as_text=True).split('id="new-key"')[0][-5:]
    )


def test_approve_and_extend_through_the_pipeline_actions(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new", data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr"}
    )
    detail_url = created.headers["Location"]
    request_id = uuid.UUID(detail_url.rsplit("/", 1)[-1])
    erasure_request = db_session.get(ErasureRequest, request_id)
    assert erasure_request is not None
    erasure_request.status = RequestStatus.AWAITING_APPROVAL
    db_session.flush()
    officer_page = officer.get(detail_url).get_data(as_text=True)
    assert "Approve</button>" not in officer_page and "Extend deadline" in officer_page
    refused = officer.post(f"/ui/requests/{request_id}/approve", data={"csrf_token": token})
    assert refused.status_code == 403
    approver, approver_token = signed_in(Role.APPROVER)
    page = approver.get(detail_url).get_data(as_text=True)
    assert "Approve</button>" in page and "Extend deadline" not in page
    approved = approver.post(
        f"/ui/requests/{request_id}/approve", data={"csrf_token": approver_token}
    )
    assert approved.status_code == 303
    assert erasure_request.status is RequestStatus.APPROVED
    due = erasure_request.due_at
    extended = officer.post(
        f"/ui/requests/{request_id}/extend",
        data={"csrf_token": token, "reason": "complex request, subject informed"},
    )
    assert extended.status_code == 303
    assert erasure_request.due_at > due
    page = officer.get(detail_url).get_data(as_text=True)
    notes, timeline = page.split("<h2>Timeline")
    assert "request.approved" in timeline and "request.extended" in timeline
    # The reason is kept encrypted and the leaf has its hash: an officer reads it decrypted with
    # the notes and in the extension's sentence, never in the raw leaf.
    assert "subject informed" in notes
    assert (
        "extended the deadline to" in timeline
        and ': <q class="reason">complex request, subject informed</q></span>' in timeline
    )
    raw = "".join(re.findall(r"<details>.*?</details>", timeline, flags=re.S))
    assert "subject informed" not in raw and "reason_sha256=" in raw


CANCEL_REASON = "subject canary.cancel@example.com +14155550123 withdrew"


def test_a_cancel_reason_is_shown_only_to_roles_that_may_read_notes(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr", "notes": "zq note 77"},
    )
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    cancelled = officer.post(
        f"/ui/requests/{request_id}/cancel",
        data={"csrf_token": token, "reason": CANCEL_REASON, "confirm": "1"},
        follow_redirects=True,
    )
    page = cancelled.get_data(as_text=True)
    notes, rest = page.split("<h2>Subject")
    subject, timeline = rest.split("<h2>Timeline")
    assert "Request cancelled." in page  # the message is the fixed outcome, not the reason
    assert CANCEL_REASON in notes and "zq note 77" in notes  # decrypted for an officer
    assert "canary.cancel" not in subject and "4155550123" not in subject
    # In the timeline only as the cancel's sentence, for an officer; never in a raw leaf.
    assert f'cancelled the request: <q class="reason">{CANCEL_REASON}</q></span>' in timeline
    raw = "".join(re.findall(r"<details>.*?</details>", timeline, flags=re.S))
    assert "canary.cancel" not in raw and "4155550123" not in raw
    stored = db_session.get(ErasureRequest, uuid.UUID(request_id))
    assert stored is not None and stored.outcome == "cancelled"
    for role in (Role.AUDITOR, Role.APPROVER):
        other, _ = signed_in(role)
        html = other.get(f"/ui/requests/{request_id}").get_data(as_text=True)
        assert "canary.cancel" not in html and "zq note 77" not in html, role
