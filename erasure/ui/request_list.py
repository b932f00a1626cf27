"""The request list (filtered, keyset-paginated) and search by subject.

Subject identifiers only ever arrive in POST bodies; they are never put in a URL, a log line, or
echoed back into a page."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask import (
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from erasure import identifiers
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    RequestStatus,
    Source,
    SubjectIdentifier,
)
from erasure.ui import queries, security
from erasure.ui.blueprint import bp
from erasure.web.inputs import end_of_day
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

PAGE_SIZE = 50


def encode_cursor(row: ErasureRequest) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        created_at, request_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        moment = datetime.fromisoformat(created_at)
        return (moment, uuid.UUID(request_id)) if moment.tzinfo else None
    except (ValueError, TypeError, binascii.Error):
        return None


def filters() -> tuple[queries.ListQuery, dict[str, Any]]:
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
        after=decode_cursor(args.get("cursor", "")) if args.get("cursor") else None,
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
    query, form = filters()
    rows = queries.list_requests(get_session(), query, datetime.now(UTC))
    next_url = None
    if len(rows) == PAGE_SIZE:
        args: dict[str, Any] = request.args.to_dict(flat=False)
        args["cursor"] = [encode_cursor(rows[-1])]
        next_url = url_for("ui.request_list", **args)
    return _render_list(rows, form, next_url=next_url, searched=False)


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
    _query, form = filters()
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
