"""After a bulk upload is confirmed, its progress page: how many of the requests it created are
received, in progress, completed, failed or ended otherwise, each request linked, inside the
console's page; the upload page lists the user's recent uploads."""

from __future__ import annotations

import io
import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, RequestStatus
from tests.support.console import SignedIn

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def _upload(client: object, token: str, rows: list[str]) -> str:
    text = "phone,regulation,reference_system,reference_id\n" + "\n".join(rows) + "\n"
    preview = client.post(  # type: ignore[attr-defined]
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "r.csv")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    fields = dict(HIDDEN.findall(preview))
    result = client.post(  # type: ignore[attr-defined]
        "/ui/requests/bulk/confirm", data=fields, content_type="multipart/form-data"
    )
    page: str = result.get_data(as_text=True)
    return page


def _counts(page: str) -> dict[str, int]:
    return {
        group: int(count)
        for group, count in re.findall(
            r'<tr data-group="([a-z_]+)"><th scope="row">[^<]+</th><td>(\d+)</td></tr>', page
        )
    }


def test_progress_page_counts_the_uploads_requests_by_state(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    tag = uuid.uuid4().hex[:6]
    earlier = _upload(client, token, [f"+14155551{n:03d},gdpr,jira,P{tag}-{n}" for n in range(2)])
    assert "<strong>2</strong> request(s) submitted" in earlier
    # The second file repeats one row of the first: only the new rows belong to this upload.
    rows = [f"+14155551{n:03d},gdpr,jira,P{tag}-{n}" for n in range(1, 6)]
    page = _upload(client, token, rows)
    link = re.search(r'id="bulk-progress-link" href="(/ui/requests/bulk/[0-9a-f-]{36})"', page)
    assert link, "the result links to the upload's progress"

    made = db_session.scalars(
        select(ErasureRequest)
        .where(ErasureRequest.reference_id.in_([f"P{tag}-{n}" for n in range(2, 6)]))
        .order_by(ErasureRequest.reference_id)
    ).all()
    assert len(made) == 4
    made[0].status = RequestStatus.COMPLETED
    made[1].status = RequestStatus.FAILED
    made[2].status = RequestStatus.DELETING
    db_session.flush()

    progress = client.get(link.group(1))
    html = progress.get_data(as_text=True)
    assert progress.status_code == 200 and 'aria-label="Main"' in html  # the site header
    assert _counts(html) == {
        "received": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 1,
        "ended": 0,
    }
    assert "<strong>4</strong> request(s) created by this upload" in html
    linked = set(re.findall(r'href="/ui/requests/([0-9a-f-]{36})"', html))
    assert linked == {str(r.id) for r in made}
    assert "2 request(s) still open" in html
    assert 'href="/ui/requests?source=bulk"' in html
    assert "4155551" not in html  # never an identifier

    # The upload page lists both uploads, newest first, each linked to its progress.
    form = client.get("/ui/requests/bulk").get_data(as_text=True)
    recent = re.findall(r'<li><a href="(/ui/requests/bulk/[0-9a-f-]{36})">', form)
    assert recent[0] == link.group(1) and len(recent) >= 2


def test_progress_of_an_unknown_upload_is_404_and_readers_may_see_it(
    signed_in: SignedIn, org: Org
) -> None:
    officer, token = signed_in(Role.OFFICER)
    page = _upload(officer, token, [f"+14155552000,gdpr,jira,Q{uuid.uuid4().hex[:6]}"])
    link = re.search(r'id="bulk-progress-link" href="([^"]+)"', page)
    assert link
    auditor, _ = signed_in(Role.AUDITOR)
    seen = auditor.get(link.group(1))
    assert seen.status_code == 200
    assert "Upload another file" not in seen.get_data(as_text=True)  # not theirs to do
    unknown = auditor.get(f"/ui/requests/bulk/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.mimetype == "text/html"
    assert 'aria-label="Main"' in unknown.get_data(as_text=True)  # the console's own 404
