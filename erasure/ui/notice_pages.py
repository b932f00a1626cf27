"""Notices to the data subject in the console: a request's notices (made when, mailed or not,
download), making an acknowledgement or a completion letter, and the admins' template editor with
a preview on sample values. Extension notices come from the extension itself (request_pages)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from erasure.errors import ErasureError, NotFound
from erasure.notices import issuing, templates
from erasure.notices.mail import SmtpServer
from erasure.notices.models import NoticeKind
from erasure.ui import security
from erasure.ui.blueprint import bp
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

KIND_NAMES = {
    NoticeKind.ACKNOWLEDGEMENT: "Acknowledgement",
    NoticeKind.EXTENSION: "Extension notice",
    NoticeKind.COMPLETION: "Completion letter",
}


def _by() -> str | None:
    user = security.current_user()
    return f"user:{user.id}" if user else None


@bp.get("/requests/<uuid:request_id>/notices")
@security.requires("view")
def request_notices(request_id: uuid.UUID) -> str:
    from erasure import workflow

    session = get_session()
    try:
        erasure_request = workflow.get_request(session, request_id)
    except NotFound:
        abort(404)
    return render_template(
        "ui/notices.html",
        title="Notices to the subject",
        r=erasure_request,
        notices=issuing.for_request(session, request_id),
        kind_names=KIND_NAMES,
        has_email=issuing.has_email(session, request_id),
        smtp_configured=SmtpServer.from_settings(web_resources().settings) is not None,
        can_complete=erasure_request.status in issuing.COMPLETED_STATUSES,
    )


@bp.post("/requests/<uuid:request_id>/notices")
@security.requires("notices")
def make_notice(request_id: uuid.UUID) -> ResponseReturnValue:
    try:
        kind = NoticeKind(request.form.get("kind", ""))
    except ValueError:
        abort(400)
    session = get_session()
    try:
        notice = issuing.issue_on_demand(
            session,
            request_id,
            kind,
            vault=web_resources().protection.vault,
            at=datetime.now(UTC),
            by=_by(),
        )
    except NotFound:
        abort(404)
    except ErasureError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.request_notices", request_id=request_id), code=303)
    session.commit()
    kick_relay()
    logger.info("console: notice %s (%s) made for request %s", notice.id, kind.value, request_id)
    flash(f"{KIND_NAMES[kind]} made.", "ok")
    return redirect(url_for("ui.request_notices", request_id=request_id), code=303)


@bp.get("/requests/<uuid:request_id>/notices/<uuid:notice_id>.txt")
@security.requires("notices")
def notice_text(request_id: uuid.UUID, notice_id: uuid.UUID) -> Response:
    try:
        notice = issuing.get(get_session(), request_id, notice_id)
    except NotFound:
        abort(404)
    rendered = issuing.open_text(web_resources().protection.vault, notice)
    if rendered is None:
        abort(404)
    response = Response(rendered.to_text(), mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="notice-{notice.kind.value}-{notice.id}.txt"'
    )
    return response


def _editor(
    problems: dict[NoticeKind, templates.TemplateProblem] | None = None,
    drafts: dict[NoticeKind, tuple[str, str]] | None = None,
) -> str:
    session = get_session()
    current = {kind: templates.current(session, kind) for kind in NoticeKind}
    previews: dict[NoticeKind, templates.Rendered | None] = {}
    for kind, template in current.items():
        try:
            previews[kind] = templates.preview(template)
        except templates.TemplateProblem:
            previews[kind] = None
    return render_template(
        "ui/notice_templates.html",
        title="Notice templates",
        current=current,
        previews=previews,
        problems=problems or {},
        drafts=drafts or {},
        kind_names=KIND_NAMES,
        variables=templates.VARIABLES,
    )


@bp.get("/notice-templates")
@security.requires("admin")
def notice_templates() -> str:
    return _editor()


@bp.post("/notice-templates/<kind>")
@security.requires("admin")
def save_notice_template(kind: str) -> ResponseReturnValue:
    try:
        notice_kind = NoticeKind(kind)
    except ValueError:
        abort(404)
    subject = request.form.get("subject", "")
    body = request.form.get("body", "")
    session = get_session()
    try:
        templates.save(session, notice_kind, subject=subject, body=body, by=_by())
    except templates.TemplateProblem as problem:
        session.rollback()
        # The draft stays in the form, so the admin corrects it instead of typing it again.
        return _editor({notice_kind: problem}, {notice_kind: (subject, body)}), 422
    session.commit()
    logger.info("console: notice template %s saved", notice_kind.value)
    flash(f"{KIND_NAMES[notice_kind]} template saved.", "ok")
    return redirect(url_for("ui.notice_templates", _anchor=notice_kind.value), code=303)


@bp.post("/notice-templates/<kind>/reset")
@security.requires("admin")
def reset_notice_template(kind: str) -> ResponseReturnValue:
    try:
        notice_kind = NoticeKind(kind)
    except ValueError:
        abort(404)
    session = get_session()
    templates.reset(session, notice_kind)
    session.commit()
    flash(f"{KIND_NAMES[notice_kind]} template back to the default.", "ok")
    return redirect(url_for("ui.notice_templates", _anchor=notice_kind.value), code=303)
