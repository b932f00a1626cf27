"""Admin work on users and keys, the confirmation step before what cannot be undone, the account
forms' autocomplete hints, and the console's own 404 page for any unknown /ui path."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.ui import accounts
from tests.support.console import PASSWORD, SignedIn, UserMaker, sign_in


@pytest.mark.parametrize(
    "path",
    [
        "/ui/nothing-here",
        "/ui/requests/not-a-uuid",
        "/ui/settings/users/42/x",
        "/ui/a/b/c.txt",
        # Known routes with an unknown id, and a missing static file.
        "/ui/requests/00000000-0000-4000-8000-000000000000",
        "/ui/requests/00000000-0000-4000-8000-000000000000/notices",
        "/ui/requests/bulk/00000000-0000-4000-8000-000000000000",
        "/ui/access-requests/00000000-0000-4000-8000-000000000000",
        "/ui/static/nothing.css",
    ],
)
def test_every_unknown_console_path_is_an_html_404_with_the_header(
    signed_in: SignedIn, path: str
) -> None:
    client, _ = signed_in(Role.OFFICER)
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "<h1>Not found</h1>" in html and 'aria-label="Main"' in html


def test_revoking_a_key_is_confirmed_first(signed_in: SignedIn, db_session: Session) -> None:
    admin, token = signed_in(Role.ADMIN)
    record = create_api_key(db_session, name="ticketing", role=Role.INTEGRATION).record
    db_session.flush()
    asked = admin.post(f"/ui/settings/api-keys/{record.prefix}/revoke", data={"csrf_token": token})
    assert asked.status_code == 200 and "Revoke this API key?" in asked.get_data(as_text=True)
    assert record.revoked_at is None
    done = admin.post(
        f"/ui/settings/api-keys/{record.prefix}/revoke",
        data={"csrf_token": token, "confirm": "1"},
    )
    assert done.status_code == 303
    stored = db_session.scalar(select(ApiKey).where(ApiKey.prefix == record.prefix))
    assert stored is not None and stored.revoked_at is not None


def test_admin_disables_after_confirming_changes_role_and_resets_password(
    signed_in: SignedIn, make_user: UserMaker, ui_app, db_session: Session
) -> None:  # type: ignore[no-untyped-def]
    admin, token = signed_in(Role.ADMIN)
    person = make_user(Role.AUDITOR)
    settings_page = admin.get("/ui/settings").get_data(as_text=True)
    assert f'href="/ui/settings/users/{person.id}"' in settings_page
    page = admin.get(f"/ui/settings/users/{person.id}").get_data(as_text=True)
    assert "Change role" in page and "Reset password" in page

    changed = admin.post(
        f"/ui/settings/users/{person.id}/role", data={"csrf_token": token, "role": "officer"}
    )
    assert changed.status_code == 303 and person.role is Role.OFFICER
    refused = admin.post(
        f"/ui/settings/users/{person.id}/role", data={"csrf_token": token, "role": "integration"}
    )
    assert refused.status_code == 303 and person.role is Role.OFFICER

    reset = admin.post(f"/ui/settings/users/{person.id}/password", data={"csrf_token": token})
    html = reset.get_data(as_text=True)
    found = re.search(r'id="new-password" class="mono" type="text" readonly value="([^"]+)"', html)
    assert found is not None
    # The new password works; the old one does not.
    assert accounts.authenticate(db_session, person.email, found.group(1)).user is not None
    assert accounts.authenticate(db_session, person.email, PASSWORD).user is None
    fresh = ui_app.test_client()
    sign_in(fresh, person, found.group(1))

    asked = admin.post(f"/ui/settings/users/{person.id}/active", data={"csrf_token": token})
    assert asked.status_code == 200 and "Disable this user?" in asked.get_data(as_text=True)
    assert person.is_active
    admin.post(f"/ui/settings/users/{person.id}/active", data={"csrf_token": token, "confirm": "1"})
    assert not person.is_active
    assert fresh.get("/ui/").status_code == 302  # signed out at once


def test_an_admin_cannot_change_their_own_account_here(
    signed_in: SignedIn, make_user: UserMaker, ui_app
) -> None:  # type: ignore[no-untyped-def]
    me = make_user(Role.ADMIN)
    client = ui_app.test_client()
    token = sign_in(client, me)
    response = client.post(
        f"/ui/settings/users/{me.id}/role", data={"csrf_token": token, "role": "auditor"}
    )
    assert response.status_code == 303 and me.role is Role.ADMIN


def test_account_forms_carry_autocomplete_hints(signed_in: SignedIn, ui_app) -> None:  # type: ignore[no-untyped-def]
    sign_in_page = ui_app.test_client().get("/ui/sign-in").get_data(as_text=True)
    assert 'autocomplete="username"' in sign_in_page
    assert 'autocomplete="current-password"' in sign_in_page
    admin, _ = signed_in(Role.ADMIN)
    settings_page = admin.get("/ui/settings").get_data(as_text=True)
    for field in ("user-email", "user-name", "user-password", "key-name"):
        tag = re.search(rf'<input id="{field}"[^>]*>', settings_page)
        assert tag is not None and "autocomplete=" in tag.group(0), field


def test_settings_show_when_a_key_was_last_used(
    signed_in: SignedIn, ui_app, db_session: Session, org
) -> None:  # type: ignore[no-untyped-def]
    admin, _ = signed_in(Role.ADMIN)
    key = create_api_key(db_session, name="jira-bridge", role=Role.OFFICER)
    db_session.flush()
    row = re.compile(r"<tr><td>jira-bridge</td>.*?</tr>", re.DOTALL)
    found = row.search(admin.get("/ui/settings").get_data(as_text=True))
    assert found is not None and "<td>—</td>" in found.group(0)
    api = ui_app.test_client()
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert api.get("/v1/erasure-requests?limit=1", headers=headers).status_code == 200
    db_session.refresh(key.record)
    assert key.record.last_used_at is not None
    found = row.search(admin.get("/ui/settings").get_data(as_text=True))
    assert found is not None
    assert f"<td>{key.record.last_used_at:%Y-%m-%d %H:%M}</td>" in found.group(0)
