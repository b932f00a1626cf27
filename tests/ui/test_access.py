"""Sign-in, sign-out, CSRF, lockout, cookie flags, and every page x role: a user of the wrong role
sees neither the page nor the actions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, RequestStatus
from erasure.ui import accounts
from tests.support.console import CONSOLE_ROLES, PASSWORD, SignedIn, UserMaker, csrf_of, sign_in

READ = set(CONSOLE_ROLES)
SUBMIT = {Role.OFFICER, Role.ADMIN}
AUDIT = {Role.AUDITOR, Role.ADMIN}
ADMIN = {Role.ADMIN}

PAGES = [
    ("/ui/", READ),
    ("/ui/requests", READ),
    ("/ui/requests.csv", READ),
    ("/ui/requests/new", SUBMIT),
    ("/ui/requests/bulk", SUBMIT),
    ("/ui/subject-search", SUBMIT),
    ("/ui/audit", AUDIT),
    ("/ui/audit/public-key", AUDIT),
    ("/ui/audit/evidence.zip", AUDIT),
    ("/ui/settings", ADMIN),
]
NAV_LINKS = {
    "/ui/requests/new": SUBMIT,
    "/ui/requests/bulk": SUBMIT,
    "/ui/subject-search": SUBMIT,
    "/ui/audit": AUDIT,
    "/ui/settings": ADMIN,
}


@pytest.mark.parametrize("role", [*CONSOLE_ROLES, Role.INTEGRATION])
@pytest.mark.usefixtures("checkpointed")
def test_pages_by_role(role: Role, signed_in: SignedIn, make_user: UserMaker, org: Org) -> None:
    if role is Role.INTEGRATION:  # machines get no console: every page is refused
        client, _ = signed_in(Role.ADMIN)  # just for an app; sign in a fresh client below
        client = client.application.test_client()
        user = make_user(Role.INTEGRATION)
        page = client.get("/ui/sign-in")
        token = csrf_of(page.get_data(as_text=True))
        client.post(
            "/ui/sign-in", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
        )
        for path, _allowed in PAGES:
            assert client.get(path).status_code == 403, path
        return
    client, _token = signed_in(role)
    for path, allowed in PAGES:
        response = client.get(path)
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (role, path, response.status_code)
    nav = client.get("/ui/").get_data(as_text=True)
    for link, allowed in NAV_LINKS.items():
        assert (f'href="{link}"' in nav) == (role in allowed), (role, link)


def test_anonymous_is_sent_to_sign_in(ui_client: FlaskClient) -> None:
    response = ui_client.get("/ui/requests")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/ui/sign-in")
    assert ui_client.post("/ui/requests/new", data={}).status_code == 400  # no CSRF token


def test_session_cookie_flags(ui_client: FlaskClient, make_user: UserMaker) -> None:
    sign_in(ui_client, make_user(Role.OFFICER))
    response = ui_client.get("/ui/sign-in")
    ui_client.get("/ui/")
    cookie = ui_client.get_cookie("erasure_console", path="/ui")
    assert cookie is not None
    assert cookie.http_only and cookie.secure and cookie.same_site == "Lax"
    del response


def test_csrf_less_posts_are_rejected(signed_in: SignedIn, db_session: Session, org: Org) -> None:
    client, token = signed_in(Role.ADMIN)
    posts = [
        ("/ui/requests/new", {"phone": "+14155550100", "regulation": "gdpr"}),
        ("/ui/sign-out", {}),
        ("/ui/settings/api-keys", {"name": "x", "role": "officer"}),
        ("/ui/audit/verify", {}),
    ]
    before = db_session.query(ErasureRequest).count()
    for path, data in posts:
        assert client.post(path, data=data).status_code == 400, path
        assert client.post(path, data=data | {"csrf_token": "forged"}).status_code == 400, path
    assert db_session.query(ErasureRequest).count() == before
    assert client.get("/ui/").status_code == 200  # still signed in: sign-out needed the token
    # And with the token, the same post works.
    ok = client.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": "+14155550100", "regulation": "gdpr"},
    )
    assert ok.status_code == 302


def test_sign_in_failures_lock_the_account(
    ui_client: FlaskClient, make_user: UserMaker, db_session: Session
) -> None:
    user = make_user(Role.OFFICER)
    token = csrf_of(ui_client.get("/ui/sign-in").get_data(as_text=True))
    for _ in range(accounts.MAX_FAILED_ATTEMPTS):
        response = ui_client.post(
            "/ui/sign-in", data={"csrf_token": token, "email": user.email, "password": "wrong" * 4}
        )
        assert response.status_code == 401
    assert user.locked_until is not None and user.locked_until > datetime.now(UTC)
    # The right password is refused while locked, with the same message.
    response = ui_client.post(
        "/ui/sign-in", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 401
    unknown = ui_client.post(
        "/ui/sign-in",
        data={"csrf_token": token, "email": "nobody@example.org", "password": PASSWORD},
    )
    assert unknown.status_code == 401
    assert unknown.get_data(as_text=True) == response.get_data(as_text=True).replace(
        user.email, "nobody@example.org"
    )
    user.locked_until = datetime(2000, 1, 1, tzinfo=UTC)  # the lock expires
    db_session.flush()
    sign_in(ui_client, user)


def test_sign_out_kills_the_cookie_everywhere(ui_app, make_user: UserMaker) -> None:  # type: ignore[no-untyped-def]
    user = make_user(Role.AUDITOR)
    first = ui_app.test_client()
    token = sign_in(first, user)
    stolen = first.get_cookie("erasure_console", path="/ui")
    assert stolen is not None
    assert first.post("/ui/sign-out", data={"csrf_token": token}).status_code == 302
    second = ui_app.test_client()
    second.set_cookie("erasure_console", stolen.value, path="/ui")
    assert second.get("/ui/").status_code == 302  # back to sign-in


def test_actions_shown_only_to_roles_that_may_use_them(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    officer, token = signed_in(Role.OFFICER)
    response = officer.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": "+14155550111", "regulation": "gdpr"},
    )
    detail_url = response.headers["Location"]
    request_id = detail_url.rsplit("/", 1)[-1]
    assert f'action="/ui/requests/{request_id}/cancel"' in officer.get(detail_url).get_data(
        as_text=True
    )
    for role in (Role.APPROVER, Role.AUDITOR):
        client, other_token = signed_in(role)
        page = client.get(detail_url).get_data(as_text=True)
        assert "/cancel" not in page
        refused = client.post(
            f"/ui/requests/{request_id}/cancel", data={"csrf_token": other_token, "reason": "x"}
        )
        assert refused.status_code == 403
    erasure_request = db_session.get(ErasureRequest, request_id)
    assert erasure_request is not None and erasure_request.status is RequestStatus.RECEIVED
    cancelled = officer.post(
        f"/ui/requests/{request_id}/cancel",
        data={"csrf_token": token, "reason": "asked twice", "confirm": "1"},
    )
    assert cancelled.status_code == 303
    assert erasure_request.status is RequestStatus.CANCELLED


def test_console_refuses_without_secret_key_in_production(
    settings,
    db_session: Session,  # type: ignore[no-untyped-def]
) -> None:
    from erasure.app import create_app

    app = create_app(settings, session_factory=lambda: db_session)
    response = app.test_client().get("/ui/sign-in")
    assert response.status_code == 503
    assert "ERASURE_SECRET_KEY" in response.get_data(as_text=True)
