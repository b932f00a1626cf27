"""The console's sign-in sessions: the app's secret key and the session cookie's settings."""

from __future__ import annotations

import secrets

from flask import Flask

from erasure.config import Mode, Settings
from erasure.ui.blueprint import SESSION_LIFETIME


def configure_sessions(app: Flask, settings: Settings) -> None:
    """The console's signed session cookie. Without ERASURE_SECRET_KEY in production its pages
    answer 503 (erasure.ui.security)."""
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
