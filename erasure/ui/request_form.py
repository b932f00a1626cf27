"""The new request form (an erasure, or an access request: the same fields, one more choice),
and the form-to-API-document translation the bulk upload shares.

Identifiers arrive in the POST body only and are never refilled into a page. The other fields,
notes included, come back after a validation error so nothing typed is lost but identifiers.
The "received on" date is the day the subject's letter or email came: the legal deadline runs
from it, not from the day it was typed in."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy import select

from erasure import workflow
from erasure.access.intake import submit_access
from erasure.core.models import (
    ErasureScope,
    Org,
    Regulation,
    Source,
)
from erasure.errors import UnknownOrg
from erasure.ui import security
from erasure.ui.blueprint import bp
from erasure.web.inputs import ErasureRequestIn, ErasureSubmissionIn, validation_errors
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

SUBJECT_FIELDS = (
    "phone",
    "email",
    "messaging_platform_key",
    "contact_id",
    "messaging_end_user_ids",
)


def _subject_from_form() -> dict[str, Any]:
    subject: dict[str, Any] = {}
    for name in SUBJECT_FIELDS[:-1]:
        value = request.form.get(name, "").strip()
        if value:
            subject[name] = value
    end_users = [
        part
        for part in request.form.get("messaging_end_user_ids", "").replace(",", " ").split()
        if part
    ]
    if end_users:
        subject["messaging_end_user_ids"] = end_users
    return subject


def _new_form_context(
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "title": "New request",
        "regulations": list(Regulation),
        "orgs": [o.name for o in get_session().scalars(select(Org).order_by(Org.name))],
        "errors": errors or {},
        "values": values or {},
        "today": datetime.now(UTC).date().isoformat(),
        "request_types": REQUEST_TYPES,
    }


def _scope_from_form() -> dict[str, Any]:
    """The form's "what to erase" part, as the API's `scope` and `conversations`."""
    fields: dict[str, Any] = {}
    if request.form.get("scope"):
        fields["scope"] = request.form["scope"]
    conversations = request.form.get("conversations", "").replace(",", " ").split()
    if conversations:
        fields["conversations"] = conversations
    return fields


def submission(body: ErasureRequestIn, source: Source) -> workflow.Submission:
    # The console's form takes a scope; bulk CSV rows erase the subject.
    if isinstance(body, ErasureSubmissionIn):
        pairs, scope = body.identifier_pairs(), body.effective_scope()
    else:
        pairs, scope = body.subject.identifier_pairs(), ErasureScope.SUBJECT
    return workflow.Submission(
        identifiers=[workflow.Identifier(kind, value) for kind, value in pairs],
        scope=scope,
        regulation=body.regulation,
        source=source,
        org=body.org,
        received_at=body.received_at,
        reference_system=body.reference.system if body.reference else None,
        reference_id=body.reference.id if body.reference else None,
        reference_url=str(body.reference.url) if body.reference and body.reference.url else None,
        notes=body.notes,
        submitted_by=_by(),
    )


def _by() -> str | None:
    """The signed-in person, as the audit log names them."""
    user = security.current_user()
    return f"user:{user.id}" if user else None


def form_document(subject: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The API's request body built from form (or CSV) fields, so both validate the same way."""
    document: dict[str, Any] = {"subject": subject, "regulation": fields.get("regulation", "")}
    if fields.get("org"):
        document["org"] = fields["org"]
    if fields.get("received_at"):
        document["received_at"] = fields["received_at"]
    if fields.get("reference_system") or fields.get("reference_id"):
        document["reference"] = {
            "system": fields.get("reference_system", ""),
            "id": fields.get("reference_id", ""),
        }
        if fields.get("reference_url"):
            document["reference"]["url"] = fields["reference_url"]
    if fields.get("notes"):
        document["notes"] = fields["notes"]
    return document


def validate_document(document: dict[str, Any]) -> tuple[ErasureRequestIn | None, dict[str, str]]:
    """Validate like the API; errors name fields and never repeat a value."""
    try:
        return ErasureSubmissionIn.model_validate(document), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in validation_errors(exc.errors(include_input=False)):
            errors.setdefault(str(error["field"]), str(error["detail"]))
        return None, errors


#: What the form can open: the value sent, and how the form names it.
REQUEST_TYPES = {"erasure": "Erasure", "access": "Access (a copy of their data)"}

FORM_FIELDS = (
    "request_type",
    "scope",
    "regulation",
    "org",
    "received_on",
    "reference_system",
    "reference_id",
    "reference_url",
    "notes",
)


def _received_at(received_on: str) -> tuple[str | None, str | None]:
    """The form's day (YYYY-MM-DD) as the API's received_at: the start of that day in UTC."""
    if not received_on:
        return None, None
    try:
        day = date.fromisoformat(received_on)
    except ValueError:
        return None, "is not a date (YYYY-MM-DD)"
    return f"{day.isoformat()}T00:00:00+00:00", None


@bp.route("/requests/new", methods=["GET", "POST"])
@security.requires("submit")
def new_request() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("ui/request_new.html", **_new_form_context())
    fields = {name: request.form.get(name, "").strip() for name in FORM_FIELDS}
    received_at, date_error = _received_at(fields["received_on"])
    document = form_document(_subject_from_form(), fields | {"received_at": received_at or ""})
    document |= _scope_from_form()
    body, errors = validate_document(document)
    if date_error:
        errors = {"received_on": date_error, **errors}
    fields["request_type"] = fields["request_type"] or "erasure"
    if fields["request_type"] not in REQUEST_TYPES:
        errors = {"request_type": "is not erasure or access", **errors}
    if body is None or errors:
        # Identifiers are not refilled: the page must not carry them back.
        return render_template("ui/request_new.html", **_new_form_context(errors, fields)), 422
    if fields["request_type"] == "access":
        return _submit_access(body, fields)
    session = get_session()
    settings = web_resources().settings
    try:
        erasure_request = workflow.submit_request(
            session,
            submission(body, Source.UI),
            protection=web_resources().protection,
            default_org=settings.default_org,
        )
    except UnknownOrg as exc:
        session.rollback()
        return render_template(
            "ui/request_new.html", **_new_form_context({"org": str(exc)}, fields)
        ), 422
    request_id = erasure_request.id
    session.commit()
    kick_relay()
    user = security.current_user()
    logger.info("console: user %s submitted request %s", user.id if user else None, request_id)
    flash(
        "Request submitted."
        + (
            " It was linked to an open request for the same subject."
            if erasure_request.duplicate_of_id
            else ""
        )
    )
    return redirect(url_for("ui.request_detail", request_id=request_id))


def _submit_access(body: ErasureRequestIn, fields: dict[str, str]) -> ResponseReturnValue:
    session = get_session()
    try:
        access = submit_access(
            session,
            submission(body, Source.UI),
            protection=web_resources().protection,
            default_org=web_resources().settings.default_org,
        )
    except UnknownOrg as exc:
        session.rollback()
        return render_template(
            "ui/request_new.html", **_new_form_context({"org": str(exc)}, fields)
        ), 422
    session.commit()
    kick_relay()
    user = security.current_user()
    logger.info(
        "console: user %s submitted access request %s", user.id if user else None, access.id
    )
    flash("Access request submitted: the export will be prepared.")
    return redirect(url_for("ui.access_detail", request_id=access.id))
