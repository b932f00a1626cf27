"""Who is signed in, what their role may do, and CSRF protection of every form.

The session cookie (signed with ERASURE_SECRET_KEY; HttpOnly, SameSite=Lax, Secure outside
development, path /ui) holds the user's id, their session version (bumped on sign-out, so a copied
cookie dies with the session) and a CSRF token that every POST must echo in a hidden field.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import escape
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from erasure.accounts.models import Role, User
from erasure.db import database_unavailable
from erasure.free_text import NOTE_READERS
from erasure.ui.blueprint import SESSION_LIFETIME, bp
from erasure.web.problems import DATABASE_RETRY_AFTER_S
from erasure.web.resources import get_session

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

READERS = frozenset({Role.OFFICER, Role.APPROVER, Role.AUDITOR, Role.ADMIN})
#: What each role may do in the console. Integrations are machines: they get no console at all.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": READERS,
    "submit": frozenset({Role.OFFICER, Role.ADMIN}),
    "cancel": frozenset({Role.OFFICER, Role.ADMIN}),
    "retry": frozenset({Role.OFFICER, Role.ADMIN}),
    "extend": frozenset({Role.OFFICER, Role.ADMIN}),
    "approve": frozenset({Role.APPROVER, Role.ADMIN}),
    "holds": frozenset({Role.APPROVER, Role.ADMIN}),  # place, release, override legal holds
    "search": frozenset({Role.OFFICER, Role.ADMIN}),
    "certificate": READERS,
    "audit": frozenset({Role.AUDITOR, Role.ADMIN}),
    "admin": frozenset({Role.ADMIN}),
    # Notes and cancel reasons: free text that may name the subject, decrypted for these only.
    "notes": NOTE_READERS,
}
#: Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"ui.sign_in", "ui.static"})


def current_user() -> User | None:
    user: User | None = g.get("ui_user")
    return user


def can(action: str) -> bool:
    user = current_user()
    return user is not None and user.role in PERMISSIONS[action]


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def start_session(user: User) -> None:
    """A fresh session for a user who just signed in (never reuse the anonymous one's contents)."""
    session.clear()
    session["uid"] = str(user.id)
    session["ver"] = user.session_version
    session["at"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def end_session() -> None:
    session.clear()


def _load_user() -> User | None:
    uid, version, started = session.get("uid"), session.get("ver"), session.get("at")
    if not isinstance(uid, str) or not isinstance(version, int) or not isinstance(started, int):
        return None
    if time.time() - started > SESSION_LIFETIME.total_seconds():
        return None
    try:
        user = get_session().get(User, uuid.UUID(uid))
    except ValueError:
        return None
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def requires(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The signed-in user's role must allow `action`; else 403 (the page is not shown)."""
    allowed = PERMISSIONS[action]

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            if user is None or user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _forbidden(_exc: Exception) -> tuple[str, int]:
    return render_template("ui/error.html", title="Not allowed", status=403), 403


def _bad_request(_exc: Exception) -> tuple[str, int]:
    return render_template("ui/error.html", title="Bad request", status=400), 400


def _not_found(_exc: Exception) -> tuple[str, int]:
    return render_template("ui/error.html", title="Not found", status=404), 404


def _too_large(_exc: Exception) -> tuple[str, int]:
    return render_template("ui/error.html", title="File too large", status=413), 413


#: The console's answer to an unexpected error: standalone (it must render even when the database
#: or the signed-in user cannot be loaded), with only the correlation id an operator looks up.
_INTERNAL_ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Something went wrong · erasure</title></head>
<body><main><h1>Something went wrong</h1>
<p>The error was logged. Quote this reference when you report it: <code>{cid}</code></p>
<p><a href="/ui/">Back to the dashboard</a></p></main></body></html>
"""


def _unexpected(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):  # e.g. 405: a plain page, not the API's problem+json
        status = exc.code or 500
        if status < 500:
            title = exc.name or "Error"
            return render_template("ui/error.html", title=title, status=status), status
    else:
        logger.error(
            "console: unhandled error on %s %s",
            request.method,
            request.url_rule.rule if request.url_rule else "(no route)",
            exc_info=exc,
        )
    page = _INTERNAL_ERROR_PAGE.format(cid=escape(g.get("correlation_id") or "unknown"))
    return Response(page, status=500, mimetype="text/html")


_UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unavailable · erasure</title></head>
<body><main><h1>Temporarily unavailable</h1>
<p>The database cannot be reached. Try again in a few seconds. Reference: <code>{cid}</code></p>
<p><a href="/ui/">Back to the dashboard</a></p></main></body></html>
"""


def _database_error(exc: DBAPIError) -> ResponseReturnValue:
    if not database_unavailable(exc):
        return _unexpected(exc)
    logger.warning("console: database unavailable on %s (%s)", request.method, type(exc).__name__)
    page = _UNAVAILABLE_PAGE.format(cid=escape(g.get("correlation_id") or "unknown"))
    response = Response(page, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _install(bp: Blueprint) -> None:
    """Hooks on the console blueprint: configuration check, CSRF, the signed-in user, headers.
    Run once, when this module is first imported (before the blueprint is registered)."""

    @bp.before_request
    def _guard() -> ResponseReturnValue | None:
        if not current_app.secret_key:
            return render_template("ui/unconfigured.html"), 503
        limit = getattr(current_app.view_functions.get(request.endpoint or ""), "max_upload", None)
        if limit is not None:
            request.max_content_length = limit
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            expected = session.get("csrf")
            if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
                logger.info("console: POST refused without a valid CSRF token")
                return render_template("ui/error.html", title="Form expired", status=400), 400
        g.ui_user = _load_user()
        if g.ui_user is None and session.get("uid"):
            session.clear()  # expired, signed out elsewhere, or disabled
        if g.ui_user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.method == "GET":
                return redirect(url_for("ui.sign_in"))
            abort(403)
        return None

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "ui.static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @bp.app_context_processor
    def _template_helpers() -> dict[str, object]:
        return {"current_user": current_user, "can": can, "csrf_token": csrf_token}

    bp.register_error_handler(403, _forbidden)
    bp.register_error_handler(400, _bad_request)
    bp.register_error_handler(404, _not_found)
    bp.register_error_handler(413, _too_large)
    bp.register_error_handler(DBAPIError, _database_error)  # 503, never the API's JSON
    bp.register_error_handler(Exception, _unexpected)  # never the API's JSON, never a traceback


_install(bp)
