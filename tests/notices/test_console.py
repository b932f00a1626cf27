"""Notices in the console (through HTTP forms): an admin edits a template, a broken one is shown
again with the problem and the draft kept; an officer makes an acknowledgement and downloads it;
an auditor sees that notices exist, not their text; the request page links to them."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import Org
from erasure.notices import templates
from erasure.notices.models import NoticeKind
from erasure.workflow import Protection
from tests.notices.support import EMAIL, submit
from tests.ui.conftest import SignedIn


def test_admin_edits_a_template_in_the_console(signed_in: SignedIn, db_session: Session) -> None:
    client, csrf = signed_in(Role.ADMIN)
    page = client.get("/ui/notice-templates")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "We need more time" in html and "extension_reason" in html
    broken = client.post(
        "/ui/notice-templates/completion",
        data={"csrf_token": csrf, "subject": "Done {{ reference }}", "body": "{% if %}"},
    )
    assert broken.status_code == 422
    text = broken.get_data(as_text=True)
    assert "The body was not saved" in text and "{% if %}" in text  # the draft is kept
    assert templates.current(db_session, NoticeKind.COMPLETION).is_default

    saved = client.post(
        "/ui/notice-templates/completion",
        data={
            "csrf_token": csrf,
            "subject": "Done {{ reference }}",
            "body": "Finished on {{ completed_on }}.",
        },
    )
    assert saved.status_code == 303
    current = templates.current(db_session, NoticeKind.COMPLETION)
    assert not current.is_default and current.body == "Finished on {{ completed_on }}."
    shown = client.get("/ui/notice-templates").get_data(as_text=True)
    assert "Subject: Done PRIV-1234" in shown and "Finished on 20 November 2026." in shown

    reset = client.post("/ui/notice-templates/completion/reset", data={"csrf_token": csrf})
    assert reset.status_code == 303
    assert templates.current(db_session, NoticeKind.COMPLETION).is_default


def test_only_admins_edit_templates(signed_in: SignedIn) -> None:
    client, csrf = signed_in(Role.OFFICER)
    assert client.get("/ui/notice-templates").status_code == 403
    assert (
        client.post(
            "/ui/notice-templates/completion",
            data={"csrf_token": csrf, "subject": "a", "body": "b"},
        ).status_code
        == 403
    )


def test_officer_makes_and_downloads_an_acknowledgement(
    signed_in: SignedIn, db_session: Session, org: Org, protection: Protection
) -> None:
    request = submit(db_session, protection, org.name)
    db_session.commit()
    client, csrf = signed_in(Role.OFFICER)
    detail = client.get(f"/ui/requests/{request.id}").get_data(as_text=True)
    assert f"/ui/requests/{request.id}/notices" in detail
    made = client.post(
        f"/ui/requests/{request.id}/notices", data={"csrf_token": csrf, "kind": "acknowledgement"}
    )
    assert made.status_code == 303
    page = client.get(f"/ui/requests/{request.id}/notices").get_data(as_text=True)
    assert 'data-kind="acknowledgement" data-delivery="queued"' in page
    assert EMAIL not in page
    link = re.search(r'href="(/ui/requests/[^"]+\.txt)"', page)
    assert link
    download = client.get(link.group(1))
    assert download.status_code == 200 and download.mimetype == "text/plain"
    assert download.get_data(as_text=True).startswith(
        "Subject: We received your erasure request (PRIV-77)"
    )
    # Not completed yet: no completion letter offered, and one asked for anyway is refused.
    assert "Make the completion letter" not in page
    refused = client.post(
        f"/ui/requests/{request.id}/notices", data={"csrf_token": csrf, "kind": "completion"}
    )
    assert refused.status_code == 303
    assert "not completed" in client.get(f"/ui/requests/{request.id}/notices").get_data(
        as_text=True
    )

    auditor, _ = signed_in(Role.AUDITOR)
    seen = auditor.get(f"/ui/requests/{request.id}/notices").get_data(as_text=True)
    assert 'data-kind="acknowledgement"' in seen and ".txt" not in seen
    assert auditor.get(link.group(1)).status_code == 403
