"""Actions on the rows selected in the request list: cancel them, extend their deadlines (both
with one reason, after a confirmation), or export them as CSV. Each request is acted on in its
own savepoint, so one that cannot be changed (already ended, no extension left) is reported and
the others go through."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from erasure.errors import ErasureError
from erasure.lifecycle import operations
from erasure.ui import confirmation, queries, security
from erasure.ui.blueprint import bp
from erasure.ui.request_export import csv_response
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

#: At most this many requests per action (two pages of the list).
MAX_SELECTED = 100
ACTIONS = {"cancel": "cancel", "extend": "extend", "export": "view"}


def _selected() -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for text in request.form.getlist("ids")[:MAX_SELECTED]:
        try:
            ids.append(uuid.UUID(text))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


def _back() -> str:
    """Where to return: the list the rows were selected on (a console path only)."""
    back = request.form.get("back", "")
    return back if back.startswith("/ui/requests") else url_for("ui.request_list")


def _apply(
    ids: list[uuid.UUID], operation: Callable[[Session, uuid.UUID, str | None, datetime], object]
) -> tuple[int, list[str]]:
    session = get_session()
    user = security.current_user()
    by = f"user:{user.id}" if user else None
    done, refused = 0, []
    for request_id in ids:
        try:
            with session.begin_nested():
                operation(session, request_id, by, datetime.now(UTC))
            done += 1
        except ErasureError as exc:
            refused.append(f"{str(request_id)[:8]}: {exc}")
    session.commit()
    kick_relay()
    return done, refused


@bp.post("/requests/selected")
@security.requires("view")
def selected_action() -> ResponseReturnValue:
    action = request.form.get("action", "")
    ids = _selected()
    if action not in ACTIONS or not ids:
        flash("Select at least one request and an action.", "error")
        return redirect(_back(), code=303)
    if not security.can(ACTIONS[action]):
        abort(403)
    if action == "export":
        return csv_response(queries.ListQuery(ids=ids, limit=MAX_SELECTED))
    reason = request.form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        flash("Give a reason (up to 500 characters) for the selected requests.", "error")
        return redirect(_back(), code=303)
    if not confirmation.confirmed():
        what = "cancelled" if action == "cancel" else "given the longest extension allowed"
        return confirmation.ask(
            title=f"{action.capitalize()} {len(ids)} request(s)?",
            message=f"{len(ids)} selected request(s) will be {what}, each with the reason given."
            + (" A cancel cannot be undone." if action == "cancel" else ""),
            action=url_for("ui.selected_action"),
            fields={
                "action": action,
                "reason": reason,
                "back": _back(),
                "ids": [str(i) for i in ids],
            },
            button=f"Yes, {action} {len(ids)} request(s)",
            back=_back(),
        )
    vault = web_resources().protection.vault
    if action == "cancel":
        done, refused = _apply(
            ids,
            lambda session, rid, by, _at: operations.cancel(
                session, rid, reason=reason, vault=vault, by=by
            ),
        )
    else:
        done, refused = _apply(
            ids,
            lambda session, rid, by, at: operations.extend(
                session, rid, reason=reason, until=None, vault=vault, by=by, at=at
            ),
        )
    user = security.current_user()
    logger.info(
        "console: user %s did %s on %d selected request(s), %d refused",
        user.id if user else None,
        action,
        done,
        len(refused),
    )
    verb = "cancelled" if action == "cancel" else "extended"
    flash(f"{done} request(s) {verb}.")
    if refused:
        flash(f"{len(refused)} could not be {verb}: " + "; ".join(refused[:10]), "error")
    return redirect(_back(), code=303)
