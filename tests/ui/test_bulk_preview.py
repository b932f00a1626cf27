"""Bulk upload in two steps: a check that says what will happen and submits nothing, then the
confirmed submission inside the console's page, with source `bulk` and links to what it made.
The check's page carries the file sealed, never an identifier in the clear, and only the user
who previewed it can confirm it."""

from __future__ import annotations

import io
import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, Source
from tests.support.console import SignedIn

MULTIPART = "multipart/form-data"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def _csv() -> str:
    rows = ["phone,email,regulation,reference_system,reference_id"]
    rows += [f"+1415555{n:04d},,gdpr,jira,BULK-{n}" for n in range(18)]
    rows.append("not-a-phone,,gdpr,jira,BULK-bad-1")
    rows.append(",canary.bulk@@example,ccpa,jira,BULK-bad-2")
    return "\n".join(rows) + "\n"


def _count(session: Session, org: Org) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(ErasureRequest).where(ErasureRequest.org_id == org.id)
        )
        or 0
    )


def test_preview_then_confirm_submits_with_source_bulk(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    before = _count(db_session, org)
    preview = client.post(
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(_csv().encode()), "r.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "<strong>18</strong> will be submitted, <strong>2</strong> rows have problems" in html
    assert "<td>20</td>" in html and "<td>21</td>" in html  # the two rows, by number
    assert "4155550001" not in html and "canary.bulk" not in html and "not-a-phone" not in html
    assert 'aria-label="Main"' in html  # the site header
    assert _count(db_session, org) == before  # nothing submitted yet

    fields = dict(HIDDEN.findall(html))
    result = client.post("/ui/requests/bulk/confirm", data=fields, content_type=MULTIPART)
    page = result.get_data(as_text=True)
    assert "<strong>18</strong> request(s) submitted" in page
    assert 'aria-label="Main"' in page and page.rstrip().endswith("</html>")
    linked = {uuid.UUID(i) for i in re.findall(r'href="/ui/requests/([0-9a-f-]{36})"', page)}
    made = db_session.scalars(
        select(ErasureRequest).where(
            ErasureRequest.org_id == org.id, ErasureRequest.reference_id.like("BULK-%")
        )
    ).all()
    assert len(made) == 18 and {r.id for r in made} == linked
    assert {r.source for r in made} == {Source.BULK}
    assert 'href="/ui/requests?source=bulk"' in page
    listed = client.get("/ui/requests?source=bulk").get_data(as_text=True)
    assert all(str(r.id) in listed for r in made)


def test_a_check_cannot_be_confirmed_by_another_user_or_altered(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    html = client.post(
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(_csv().encode()), "r.csv")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    fields = dict(HIDDEN.findall(html))
    before = _count(db_session, org)
    other, other_token = signed_in(Role.OFFICER)
    stolen = other.post(
        "/ui/requests/bulk/confirm",
        data=fields | {"csrf_token": other_token},
        content_type=MULTIPART,
    )
    assert stolen.status_code == 422 and "upload the file again" in stolen.get_data(as_text=True)
    altered = fields | {"issued": "2026-01-01T00:00:00+00:00"}
    refused = client.post("/ui/requests/bulk/confirm", data=altered, content_type=MULTIPART)
    assert refused.status_code == 422
    assert _count(db_session, org) == before
