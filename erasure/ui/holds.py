"""The console's legal holds, for approvers and admins: the holds page (place one on a subject or
an org-wide matter, release one) and the override of a held request's holds. A request's page
shows what holds it (`hold_notice`, included by its template). Operations are
erasure.lifecycle.holds; the identifier is sent in the form body only and kept as its pseudonym.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from erasure import identifiers
from erasure.core.models import IdentifierKind, Org, RequestStatus
from erasure.errors import ErasureError, NotFound
from erasure.lifecycle import holds
from erasure.ui import security
from erasure.ui.blueprint import bp
from erasure.web.inputs import end_of_day
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

MAX_REASON = 1000


def _by() -> str:
    user = security.current_user()
    return f"user:{user.id}" if user else "user:unknown"


def _page(errors: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    session = get_session()
    now = datetime.now(UTC)
    vault = web_resources().protection.vault
    orgs = {org.id: org.name for org in session.scalars(select(Org).order_by(Org.name))}
    rows = [
        {
            "hold": h,
            "org": orgs.get(h.org_id, ""),
            "state": holds.state(h, now),
            "reason": holds.open_reason(vault, h),
            "held": holds.held_requests(session, h.id),
        }
        for h in holds.list_holds(session, active_only=False, at=now)
    ]
    return render_template(
        "ui/holds.html",
        title="Legal holds",
        rows=rows,
        orgs=sorted(orgs.values()),
        kinds=list(IdentifierKind),
        errors=errors or [],
    ), status


@bp.get("/holds")
@security.requires("holds")
def holds_page() -> tuple[str, int]:
    return _page()


def _placement() -> tuple[holds.Placement | None, list[str]]:
    """The form as a placement, or what is wrong with it (never repeating the identifier)."""
    form = request.form
    errors: list[str] = []
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > MAX_REASON:
        errors.append(f"Give the matter (1 to {MAX_REASON} characters).")
    try:
        ends_at = end_of_day(date.fromisoformat(form.get("ends_on", "")))
        if ends_at <= datetime.now(UTC):
            errors.append("The end date must be today or later.")
    except ValueError:
        errors.append("Give the end date (YYYY-MM-DD).")
        ends_at = datetime.now(UTC)
    subject: tuple[IdentifierKind, str] | None = None
    if form.get("scope") == "subject":
        kind_text = form.get("kind", "")
        if kind_text not in IdentifierKind.__members__.values():
            errors.append("Choose what kind of identifier the subject is held by.")
        else:
            kind = IdentifierKind(kind_text)
            try:
                subject = (kind, identifiers.normalize(kind, form.get("value", "")))
            except identifiers.InvalidIdentifier:
                errors.append(f"That is not a valid {kind.value.replace('_', ' ')}.")
    elif form.get("scope") != "org":
        errors.append("Choose a subject or an org-wide hold.")
    if errors:
        return None, errors
    org = form.get("org") or None
    return holds.Placement(reason=reason, ends_at=ends_at, org=org, subject=subject), []


@bp.post("/holds")
@security.requires("holds")
def place_hold() -> ResponseReturnValue:
    placement, errors = _placement()
    if placement is None:
        return _page(errors, 422)
    session = get_session()
    resources = web_resources()
    try:
        legal_hold = holds.place(
            session,
            placement,
            protection=resources.protection,
            default_org=resources.settings.default_org,
            by=_by(),
            at=datetime.now(UTC),
        )
    except ErasureError as exc:
        session.rollback()
        return _page([str(exc)], 422)
    session.commit()
    kick_relay()
    logger.info("console: hold %s placed", legal_hold.id)
    flash("Legal hold placed.")
    return redirect(url_for("ui.holds_page"), code=303)


@bp.post("/holds/<uuid:hold_id>/release")
@security.requires("holds")
def release_hold(hold_id: uuid.UUID) -> ResponseReturnValue:
    session = get_session()
    try:
        holds.release(session, hold_id, by=_by(), at=datetime.now(UTC))
    except NotFound:
        abort(404)
    except ErasureError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.holds_page"), code=303)
    session.commit()
    kick_relay()
    flash("Legal hold released; the requests only it held go on.")
    return redirect(url_for("ui.holds_page"), code=303)


@bp.post("/requests/<uuid:request_id>/override-hold")
@security.requires("holds")
def override_hold(request_id: uuid.UUID) -> ResponseReturnValue:
    reason = request.form.get("reason", "").strip()
    back = redirect(url_for("ui.request_detail", request_id=request_id), code=303)
    if not reason or len(reason) > MAX_REASON:
        flash(f"Give a reason (1 to {MAX_REASON} characters).", "error")
        return back
    session = get_session()
    try:
        holds.override(
            session,
            request_id,
            reason=reason,
            vault=web_resources().protection.vault,
            by=_by(),
            at=datetime.now(UTC),
        )
    except NotFound:
        abort(404)
    except ErasureError as exc:
        session.rollback()
        flash(str(exc), "error")
        return back
    session.commit()
    kick_relay()
    flash("Hold overridden: the request goes on to deletion.")
    return back


@bp.app_context_processor
def _hold_notice() -> dict[str, Any]:
    return {"hold_notice": hold_notice}


def hold_notice(request_id: uuid.UUID, status: RequestStatus) -> dict[str, Any] | None:
    """What a request's page shows of legal holds: the holds it waits on (their reason only to
    those who manage holds), and its past waits. None when it never waited on one."""
    session = get_session()
    waits = holds.waits_of(session, request_id)
    if not waits:
        return None
    manage = security.can("holds")
    vault = web_resources().protection.vault
    waiting_on = [
        {
            "id": h.id,
            "ends_at": h.ends_at,
            "reason": holds.open_reason(vault, h) if manage else None,
        }
        for h in (holds.waiting_on(session, request_id) if status is RequestStatus.ON_HOLD else [])
    ]
    return {
        "held": status is RequestStatus.ON_HOLD,
        "waiting_on": waiting_on,
        "waits": waits,
        "can_override": manage and status is RequestStatus.ON_HOLD,
    }
