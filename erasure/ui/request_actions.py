"""What the console does to one request: cancel, approve, retry, extend. Each runs one lifecycle
operation for the signed-in person and comes back to the request page. A cancel, and an extension
of a request already overdue, are confirmed first (erasure.ui.confirmation)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from flask import (
    Response,
    abort,
    flash,
    redirect,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.errors import ErasureError, InvalidTransition, NotFound
from erasure.lifecycle import operations
from erasure.ui import confirmation, queries, security
from erasure.ui.blueprint import bp
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)


def _reason() -> str:
    reason = request.form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        flash("Give a reason (up to 500 characters).", "error")
        abort(
            Response(status=303, headers={"Location": request.referrer or url_for("ui.dashboard")})
        )
    return reason


def _done(request_id: uuid.UUID, message: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("ui.request_detail", request_id=request_id), code=303)


@bp.post("/requests/<uuid:request_id>/cancel")
@security.requires("cancel")
def cancel(request_id: uuid.UUID) -> ResponseReturnValue:
    reason = _reason()
    if not confirmation.confirmed():
        return confirmation.ask(
            title="Cancel this request?",
            message=f"Request {request_id} will be cancelled. Records not yet sent to Salesforce "
            "are withdrawn; deletions already sent cannot be recalled. This cannot be undone.",
            action=url_for("ui.cancel", request_id=request_id),
            fields={"reason": reason},
            button="Yes, cancel the request",
            back=url_for("ui.request_detail", request_id=request_id),
        )
    session = get_session()
    try:
        user = security.current_user()
        erasure_request = operations.cancel(
            session,
            request_id,
            reason=reason,
            vault=web_resources().protection.vault,
            by=f"user:{user.id}" if user else None,
        )
    except NotFound:
        abort(404)
    except InvalidTransition as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.request_detail", request_id=request_id), code=303)
    outcome = erasure_request.outcome or "cancelled"
    session.commit()
    return _done(request_id, f"Request {outcome}.")


def _act(
    action: str,
    request_id: uuid.UUID,
    operation: Callable[[Session, str | None, datetime], object],
    message: str,
) -> ResponseReturnValue:
    """Run one lifecycle operation for the signed-in person (`by` names them in the audit log),
    commit, and come back to the request with `message`."""
    user = security.current_user()
    session = get_session()
    try:
        operation(session, f"user:{user.id}" if user else None, datetime.now(UTC))
    except NotFound:
        abort(404)
    except ErasureError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.request_detail", request_id=request_id), code=303)
    session.commit()
    kick_relay()
    logger.info(
        "console: user %s did %s on request %s", user.id if user else None, action, request_id
    )
    return _done(request_id, message)


@bp.post("/requests/<uuid:request_id>/approve")
@security.requires("approve")
def approve(request_id: uuid.UUID) -> ResponseReturnValue:
    return _act(
        "approve",
        request_id,
        lambda session, by, at: operations.approve(session, request_id, by=by, at=at),
        "Request approved.",
    )


@bp.post("/requests/<uuid:request_id>/retry")
@security.requires("retry")
def retry(request_id: uuid.UUID) -> ResponseReturnValue:
    return _act(
        "retry",
        request_id,
        lambda session, by, at: operations.retry(session, request_id, by=by, at=at),
        "Failed records queued again.",
    )


@bp.post("/requests/<uuid:request_id>/extend")
@security.requires("extend")
def extend(request_id: uuid.UUID) -> ResponseReturnValue:
    reason = _reason()
    if not confirmation.confirmed():
        try:
            due_at = workflow.get_request(get_session(), request_id).due_at
        except NotFound:
            abort(404)
        late = -queries.days_left(due_at, datetime.now(UTC))
        if late > 0:
            return confirmation.ask(
                title="Extend an overdue request?",
                message=f"This request is already overdue by {late} day(s): its legal deadline "
                f"passed on {due_at:%Y-%m-%d}. An extension has to be decided and told to the "
                "subject within the original period; extending now does not make the answer "
                "on time. Extend anyway?",
                action=url_for("ui.extend", request_id=request_id),
                fields={"reason": reason},
                button="Yes, extend the deadline",
                back=url_for("ui.request_detail", request_id=request_id),
            )
    vault = web_resources().protection.vault
    return _act(
        "extend",
        request_id,
        lambda session, by, at: operations.extend(
            session, request_id, reason=reason, until=None, vault=vault, by=by, at=at
        ),
        "Deadline extended.",
    )
