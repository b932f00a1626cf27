"""Requests: the filtered list (with CSV export and pagination), search by subject, the new request
form, a request's detail page, and its actions (cancel, approve, retry, extend, certificate).

Subject identifiers only ever arrive in POST bodies; they are never put in a URL, a log line, or
echoed back into a page.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import free_text, identifiers, workflow
from erasure.audit import certify
from erasure.audit.certificate import dump_certificate
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    Org,
    Regulation,
    RequestStatus,
    Source,
    SubjectIdentifier,
    TargetStatus,
)
from erasure.errors import ErasureError, InvalidTransition, NotFound, NotReady, UnknownOrg
from erasure.lifecycle import operations
from erasure.pipeline.states import record_pseudonym
from erasure.ui import queries, security
from erasure.ui.blueprint import bp
from erasure.web.inputs import ErasureRequestIn, end_of_day, validation_errors
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "id",
    "status",
    "org",
    "source",
    "regulation",
    "reference_system",
    "reference_id",
    "received_at",
    "due_at",
    "days_left",
    "is_at_risk",
    "predicted_completion_at",
    "completed_at",
    "duplicate_of",
)
SUBJECT_FIELDS = (
    "phone",
    "email",
    "messaging_platform_key",
    "contact_id",
    "messaging_end_user_ids",
)


def _encode_cursor(row: ErasureRequest) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        created_at, request_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        moment = datetime.fromisoformat(created_at)
        return (moment, uuid.UUID(request_id)) if moment.tzinfo else None
    except (ValueError, TypeError, binascii.Error):
        return None


def _filters() -> tuple[queries.ListQuery, dict[str, Any]]:
    """The list's filters from the query string (bad values are ignored, not errors)."""
    args = request.args
    statuses = [
        RequestStatus(s) for s in args.getlist("status") if s in RequestStatus.__members__.values()
    ]
    source = args.get("source", "")
    due_text = args.get("due_before", "")
    due_before = None
    try:
        if due_text:
            due_before = end_of_day(date.fromisoformat(due_text))  # as the API: that day included
    except ValueError:
        due_text = ""
    source = source if source in Source.__members__.values() else ""
    at_risk = args.get("at_risk") == "1"
    form: dict[str, Any] = {
        "status": [s.value for s in statuses],
        "source": source,
        "due_before": due_text,
        "at_risk": at_risk,
    }
    query = queries.ListQuery(
        statuses=statuses,
        source=Source(source) if source else None,
        due_before=due_before,
        at_risk=at_risk,
        after=_decode_cursor(args.get("cursor", "")) if args.get("cursor") else None,
        limit=PAGE_SIZE,
    )
    return query, form


def _render_list(
    rows: list[ErasureRequest], form: dict[str, Any], *, next_url: str | None, searched: bool
) -> str:
    now = datetime.now(UTC)
    return render_template(
        "ui/request_list.html",
        title="Requests",
        rows=rows,
        form=form,
        now=now,
        days_left=queries.days_left,
        statuses=list(RequestStatus),
        sources=list(Source),
        next_url=next_url,
        searched=searched,
    )


@bp.get("/requests")
@security.requires("view")
def request_list() -> str:
    query, form = _filters()
    rows = queries.list_requests(get_session(), query, datetime.now(UTC))
    next_url = None
    if len(rows) == PAGE_SIZE:
        args: dict[str, Any] = request.args.to_dict(flat=False)
        args["cursor"] = [_encode_cursor(rows[-1])]
        next_url = url_for("ui.request_list", **args)
    return _render_list(rows, form, next_url=next_url, searched=False)


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/requests.csv")
@security.requires("view")
def request_list_csv() -> ResponseReturnValue:
    """The filtered list as CSV: ids, states, dates and ticket references; no personal data."""
    query, _form = _filters()
    now = datetime.now(UTC)
    session = get_session()

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after = query.after
        written = 0
        while written < CSV_MAX_ROWS:
            page = queries.list_requests(
                session,
                queries.ListQuery(
                    statuses=query.statuses,
                    source=query.source,
                    due_before=query.due_before,
                    at_risk=query.at_risk,
                    after=after,
                    limit=1000,
                ),
                now,
            )
            for r in page:
                writer.writerow(
                    [
                        _csv_cell(v)
                        for v in (
                            r.id,
                            r.status.value,
                            r.org.name,
                            r.source.value,
                            r.regulation.value,
                            r.reference_system,
                            r.reference_id,
                            r.received_at.isoformat(),
                            r.due_at.isoformat(),
                            queries.days_left(r.due_at, now),
                            str(r.is_at_risk).lower(),
                            r.predicted_completion_at.isoformat()
                            if r.predicted_completion_at
                            else None,
                            r.completed_at.isoformat() if r.completed_at else None,
                            r.duplicate_of_id,
                        )
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            written += len(page)
            if len(page) < 1000:
                break
            after = (page[-1].created_at, page[-1].id)

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="erasure-requests-{now.strftime("%Y%m%d-%H%M%S")}.csv"'
    )
    return response


@bp.route("/subject-search", methods=["GET", "POST"])
@security.requires("search")
def subject_search() -> str | tuple[str, int]:
    """Find a subject's requests through the pseudonym. POST only: the identifier stays out of
    the URL, the logs and the page (the form comes back empty)."""
    kinds = list(IdentifierKind)
    if request.method == "GET":
        return render_template(
            "ui/subject_search.html", title="Find a subject", kinds=kinds, error=None
        )
    kind_text = request.form.get("kind", "")
    if kind_text not in IdentifierKind.__members__.values():
        return render_template(
            "ui/subject_search.html",
            title="Find a subject",
            kinds=kinds,
            error="Choose what kind of identifier this is.",
        ), 422
    kind = IdentifierKind(kind_text)
    try:
        normalized = identifiers.normalize(kind, request.form.get("value", ""))
    except identifiers.InvalidIdentifier:
        return render_template(
            "ui/subject_search.html",
            title="Find a subject",
            kinds=kinds,
            error=f"That is not a valid {kind.value.replace('_', ' ')}.",
        ), 422
    blind = identifiers.pseudonym(web_resources().settings.pseudonym_key_bytes, kind, normalized)
    session = get_session()
    ids = list(
        session.scalars(
            select(SubjectIdentifier.request_id).where(SubjectIdentifier.blind_index == blind)
        )
    )
    rows = queries.list_requests(session, queries.ListQuery(ids=ids, limit=500), datetime.now(UTC))
    _query, form = _filters()
    return render_template(
        "ui/request_list.html",
        title="Subject search",
        rows=rows,
        form=form,
        now=datetime.now(UTC),
        days_left=queries.days_left,
        statuses=list(RequestStatus),
        sources=list(Source),
        next_url=None,
        searched=True,
        pseudonym=blind.hex(),
        kind=kind.value,
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
    }


def _submission(body: ErasureRequestIn, source: Source) -> workflow.Submission:
    return workflow.Submission(
        identifiers=[
            workflow.Identifier(kind, value) for kind, value in body.subject.identifier_pairs()
        ],
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
        return ErasureRequestIn.model_validate(document), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in validation_errors(exc.errors(include_input=False)):
            errors.setdefault(str(error["field"]), str(error["detail"]))
        return None, errors


@bp.route("/requests/new", methods=["GET", "POST"])
@security.requires("submit")
def new_request() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("ui/request_new.html", **_new_form_context())
    fields = {
        name: request.form.get(name, "").strip()
        for name in (
            "regulation",
            "org",
            "reference_system",
            "reference_id",
            "reference_url",
            "notes",
        )
    }
    body, errors = validate_document(form_document(_subject_from_form(), fields))
    if body is None:
        # Identifiers are not refilled: the page must not carry them back.
        return render_template(
            "ui/request_new.html", **_new_form_context(errors, fields | {"notes": ""})
        ), 422
    session = get_session()
    settings = web_resources().settings
    try:
        erasure_request = workflow.submit_request(
            session,
            _submission(body, Source.UI),
            protection=web_resources().protection,
            default_org=settings.default_org,
        )
    except UnknownOrg as exc:
        session.rollback()
        return render_template(
            "ui/request_new.html", **_new_form_context({"org": str(exc)}, fields | {"notes": ""})
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


def _load(request_id: uuid.UUID) -> ErasureRequest:
    try:
        return workflow.get_request(get_session(), request_id)
    except NotFound:
        abort(404)


@bp.get("/requests/<uuid:request_id>")
@security.requires("view")
def request_detail(request_id: uuid.UUID) -> str:
    session = get_session()
    erasure_request = _load(request_id)
    now = datetime.now(UTC)
    entries = queries.timeline(session, request_id)
    key = web_resources().settings.pseudonym_key_bytes
    targets = [
        {
            "kind": t.kind.value,
            "record": record_pseudonym(key, t.salesforce_id)[:16] if t.salesforce_id else None,
            "status": t.status.value,
            "log_id": t.log_id,
            "log_status": t.log_status,
            "failure_reason": t.failure_reason,
        }
        for t in sorted(erasure_request.targets, key=lambda t: (t.created_at, t.id))
    ]
    open_ = not erasure_request.status.is_terminal
    has_failed = any(t.status is TargetStatus.FAILED for t in erasure_request.targets)
    offered = {
        "cancel": open_ and security.can("cancel"),
        "approve": erasure_request.status is RequestStatus.AWAITING_APPROVAL
        and security.can("approve"),
        "retry": has_failed
        and erasure_request.status not in (RequestStatus.CANCELLED, RequestStatus.REJECTED)
        and security.can("retry"),
        "extend": open_ and security.can("extend"),
        "certificate": erasure_request.status in certify.CERTIFIABLE
        and security.can("certificate"),
    }
    free_text_shown = None
    if security.can("notes"):
        vault = web_resources().protection.vault
        free_text_shown = {
            "notes": free_text.open_notes(vault, erasure_request),
            "cancel_reason": free_text.open_cancel_reason(vault, erasure_request),
        }
    return render_template(
        "ui/request_detail.html",
        title=f"Request {erasure_request.id}",
        r=erasure_request,
        free_text=free_text_shown,
        now=now,
        days_left=queries.days_left(erasure_request.due_at, now),
        timeline=entries,
        pseudonyms=queries.subject_pseudonyms(entries),
        targets=targets,
        offered=offered,
    )


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
    vault = web_resources().protection.vault
    return _act(
        "extend",
        request_id,
        lambda session, by, at: operations.extend(
            session, request_id, reason=reason, until=None, vault=vault, by=by, at=at
        ),
        "Deadline extended.",
    )


@bp.get("/requests/<uuid:request_id>/certificate")
@security.requires("certificate")
def certificate(request_id: uuid.UUID) -> ResponseReturnValue:
    key = web_resources().signing_key
    if key is None:
        flash("No audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE).", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    try:
        document = certify.certificate_for(get_session(), request_id, signing_key=key)
    except NotFound:
        abort(404)
    except (InvalidTransition, NotReady) as exc:
        flash(f"No certificate yet: {exc}. Try again in a few seconds.", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    response = Response(dump_certificate(document), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="erasure-certificate-{request_id}.json"'
    )
    return response
