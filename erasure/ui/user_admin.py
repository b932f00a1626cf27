"""Console users, for admins: create one, change a user's role, reset their password (a new one
is generated and shown once), disable or enable them. An admin never changes or disables their
own account here, so a console cannot lose its last admin by a slip. Disabling is confirmed
first; every change ends the user's open sessions."""

from __future__ import annotations

import logging
import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from erasure.accounts.models import Role, User
from erasure.ui import accounts, confirmation, security
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session

logger = logging.getLogger(__name__)

#: Roles a person can hold in the console (integrations are machines: API keys only).
PERSON_ROLES = tuple(r for r in Role if r is not Role.INTEGRATION)


def _other_user(user_id: uuid.UUID) -> User:
    """The user to change: never the signed-in admin themself."""
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    me = security.current_user()
    if me is not None and user.id == me.id:
        flash("You cannot change your own account here.", "error")
        abort(redirect(url_for("ui.settings"), code=303))
    return user


def _page(user: User, *, new_password: str | None = None) -> str:
    return render_template(
        "ui/user.html",
        title=f"User {user.email}",
        u=user,
        roles=PERSON_ROLES,
        new_password=new_password,
    )


@bp.post("/settings/users")
@security.requires("admin")
def create_user() -> ResponseReturnValue:
    role_text = request.form.get("role", "")
    if role_text not in {r.value for r in PERSON_ROLES}:
        flash("Choose a role for the user.", "error")
        return redirect(url_for("ui.settings"), code=303)
    session = get_session()
    try:
        user = accounts.create_user(
            session,
            email=request.form.get("email", ""),
            name=request.form.get("name", ""),
            role=Role(role_text),
            password=request.form.get("password", ""),
        )
    except ValueError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.settings"), code=303)
    session.commit()
    logger.info("console: user %s created (role %s)", user.id, role_text)
    flash(f"User {user.email} created.")
    return redirect(url_for("ui.settings"), code=303)


@bp.get("/settings/users/<uuid:user_id>")
@security.requires("admin")
def user_page(user_id: uuid.UUID) -> str:
    return _page(_other_user(user_id))


@bp.post("/settings/users/<uuid:user_id>/role")
@security.requires("admin")
def change_role(user_id: uuid.UUID) -> ResponseReturnValue:
    user = _other_user(user_id)
    role_text = request.form.get("role", "")
    if role_text not in {r.value for r in PERSON_ROLES}:
        flash("Choose a role for the user.", "error")
        return redirect(url_for("ui.user_page", user_id=user_id), code=303)
    previous = user.role
    user.role = Role(role_text)
    user.session_version += 1  # they sign in again, and see what the new role allows
    get_session().commit()
    logger.info("console: user %s role %s -> %s", user.id, previous.value, role_text)
    flash(f"{user.email} is now {role_text}.")
    return redirect(url_for("ui.user_page", user_id=user_id), code=303)


@bp.post("/settings/users/<uuid:user_id>/password")
@security.requires("admin")
def reset_password(user_id: uuid.UUID) -> ResponseReturnValue:
    user = _other_user(user_id)
    password = accounts.generate_password()
    accounts.set_password(user, password)  # ends the user's sessions
    user.locked_until = None
    user.failed_attempts = 0
    get_session().commit()
    logger.info("console: password of user %s reset", user.id)
    # Shown once, in this response only (never in a URL, a flash cookie or a log).
    return _page(user, new_password=password)


@bp.post("/settings/users/<uuid:user_id>/active")
@security.requires("admin")
def toggle_user(user_id: uuid.UUID) -> ResponseReturnValue:
    user = _other_user(user_id)
    if user.is_active and not confirmation.confirmed():
        return confirmation.ask(
            title="Disable this user?",
            message=f"{user.email} will be signed out at once and cannot sign in until an admin "
            "enables the account again.",
            action=url_for("ui.toggle_user", user_id=user_id),
            fields={},
            button="Yes, disable the user",
            back=url_for("ui.settings"),
        )
    user.is_active = not user.is_active
    user.session_version += 1
    user.locked_until = None
    user.failed_attempts = 0
    get_session().commit()
    flash(f"User {user.email} {'enabled' if user.is_active else 'disabled'}.")
    return redirect(url_for("ui.settings"), code=303)
