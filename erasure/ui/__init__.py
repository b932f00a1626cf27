"""The privacy officer's console: server-rendered pages under /ui for officers, approvers,
auditors and admins (sign-in with a password, CSRF-protected forms, role-checked actions).

An HTTP edge beside `erasure.intake` (whose session handling and schemas it reuses); it translates
forms to workflow and pipeline calls and commits once per request, like the API's views.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint, Flask

from erasure.config import Mode, Settings

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Signed-in sessions end after this long, whatever the activity.
SESSION_LIFETIME = timedelta(hours=12)


def init_app(app: Flask, settings: Settings) -> None:
    """Register the console. Without ERASURE_SECRET_KEY in production its pages answer 503."""
    from erasure.ui import admin, auditor, bulk, dashboard, request_pages, security

    del admin, auditor, bulk, dashboard, request_pages, security  # routes and hooks on `bp`
    if settings.secret_key is not None:
        app.secret_key = settings.secret_key.get_secret_value()
    elif settings.mode is Mode.DEVELOPMENT:
        app.secret_key = secrets.token_urlsafe(32)  # sessions end when this process does
    app.config.update(
        SESSION_COOKIE_NAME="erasure_console",
        SESSION_COOKIE_PATH="/ui",  # never sent to the API
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.mode is not Mode.DEVELOPMENT,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.register_blueprint(bp)
