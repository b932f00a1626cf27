"""The web console: users by role, their password, signing in and the CSRF token of a page."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from erasure.accounts.models import Role, User

PASSWORD = "correct horse battery staple"


CONSOLE_ROLES = (Role.OFFICER, Role.APPROVER, Role.AUDITOR, Role.ADMIN)


UserMaker = Callable[[Role], User]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: FlaskClient, user: User, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    page = client.get("/ui/sign-in")
    token = csrf_of(page.get_data(as_text=True))
    response = client.post(
        "/ui/sign-in", data={"csrf_token": token, "email": user.email, "password": password}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_of(client.get("/ui/").get_data(as_text=True))


SignedIn = Callable[[Role], tuple[FlaskClient, str]]
