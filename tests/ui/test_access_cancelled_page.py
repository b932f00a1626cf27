"""A cancelled access request's console page: the state, the fixed outcome, and the cancel reason
for officers and admins only (others are told there is one)."""

from __future__ import annotations

import uuid

from erasure.accounts.models import Role
from erasure.core.models import Org
from tests.support.console import SignedIn
from tests.support.web import KeyMaker

REASON = "Subject withdrew: ana.canary@example.com"


def test_the_page_shows_the_cancel_and_its_reason_to_officers_only(
    signed_in: SignedIn, org: Org, make_key: KeyMaker
) -> None:
    client, token = signed_in(Role.OFFICER)
    made = client.post(
        "/ui/requests/new",
        data={
            "csrf_token": token,
            "request_type": "access",
            "phone": "+14155557401",
            "regulation": "gdpr",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    access_id = uuid.UUID(made.headers["Location"].rsplit("/", 1)[-1])
    api = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
    cancelled = client.post(
        f"/v1/access-requests/{access_id}/cancel", json={"reason": REASON}, headers=api
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    html = client.get(f"/ui/access-requests/{access_id}").get_data(as_text=True)
    assert 'data-status="cancelled"' in html and "Identifiers destroyed" in html
    assert REASON in html

    auditor, _ = signed_in(Role.AUDITOR)
    page = auditor.get(f"/ui/access-requests/{access_id}").get_data(as_text=True)
    assert REASON not in page and "not shown to your role" in page
