"""The request list (filtered, keyset-paginated) and search by subject.

Subject identifiers only ever arrive in POST bodies; they are never put in a URL, a log line, or
echoed back into a page."""

from __future__ import annotations

import base64
import binascii
import dataclasses
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
from erasure.core import request_pages
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
#: Sort keys the list offers: each is a keyset on (column, id) that an index serves.
SORTS: dict[str, request_pages.Order] = {"created": "created", "due": "due"}


def encode_cursor(value: datetime, request_id: uuid.UUID) -> str:
    raw = json.dumps([value.isoformat(), str(request_id)]).encode()
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


def _search(text: str) -> dict[str, Any]:
    """A request id finds that request; anything else is taken as a ticket id."""
    if not text:
        return {}
    try:
        return {"ids": [uuid.UUID(text)]}
    except ValueError:
        return {"reference_id": text[:255]}


def filters() -> tuple[queries.ListQuery, dict[str, Any]]:
    """The list's filters, search and order from the query string (bad values are ignored, not
    errors)."""
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
    q = args.get("q", "").strip()
    sort = args.get("sort", "created") if args.get("sort") in SORTS else "created"
    ascending = args.get("dir") == "asc"
    form: dict[str, Any] = {
        "status": [s.value for s in statuses],
        "source": source,
        "due_before": due_text,
        "at_risk": at_risk,
        "q": q,
        "sort": sort,
        "dir": "asc" if ascending else "desc",
    }
    query = queries.ListQuery(
        statuses=statuses,
        source=Source(source) if source else None,
        due_before=due_before,
        at_risk=at_risk,
        after=decode_cursor(args.get("cursor", "")) if args.get("cursor") else None,
        limit=PAGE_SIZE,
        order=SORTS[sort],
        ascending=ascending,
        **_search(q),
    )
    return query, form


def _page(query: queries.ListQuery) -> tuple[list[ErasureRequest], bool, bool]:
    """One page of the list, and whether there are pages before and after it. Going back runs
    the same keyset the other way from the page's first row (`before`), then turns it round."""
    session, now = get_session(), datetime.now(UTC)
    before = decode_cursor(request.args.get("before", "")) if request.args.get("before") else None
    if before is None:
        rows = queries.list_requests(session, query, now)
        return rows, query.after is not None, len(rows) == query.limit
    backwards = dataclasses.replace(query, after=before, ascending=not query.ascending)
    rows = list(reversed(queries.list_requests(session, backwards, now)))
    if len(rows) < query.limit:  # back at the start: show the first page whole
        first = queries.list_requests(session, dataclasses.replace(query, after=None), now)
        return first, False, len(first) == query.limit
    return rows, True, True


def _link(**changes: str | None) -> str:
    """This list's URL with some arguments changed (None removes one)."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = [value]
    return url_for("ui.request_list", **args)


def _sort_links(form: dict[str, Any]) -> dict[str, str]:
    """Each sortable column's header link: the other direction if it is the current order."""
    links = {}
    for key in SORTS:
        current = form["sort"] == key
        direction = ("asc" if form["dir"] == "desc" else "desc") if current else "asc"
        if key == "created" and not current:
            direction = "desc"
        links[key] = _link(sort=key, dir=direction, cursor=None, before=None)
    return links


def _render_list(rows: list[ErasureRequest], form: dict[str, Any], **extra: Any) -> str:
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "title": "Requests",
        "rows": rows,
        "form": form,
        "now": now,
        "days_left": queries.days_left,
        "statuses": list(RequestStatus),
        "sources": list(Source),
        "next_url": None,
        "prev_url": None,
        "total": None,
        "count_cap": queries.COUNT_CAP,
        "sort_links": {},
        "searched": False,
    }
    return render_template("ui/request_list.html", **(context | extra))


@bp.get("/requests")
@security.requires("view")
def request_list() -> str:
    query, form = filters()
    rows, has_prev, has_next = _page(query)
    order = query.order
    next_url = prev_url = None
    if rows and has_next:
        next_url = _link(
            cursor=encode_cursor(*request_pages.cursor_of(rows[-1], order)), before=None
        )
    if rows and has_prev:
        prev_url = _link(
            before=encode_cursor(*request_pages.cursor_of(rows[0], order)), cursor=None
        )
    return _render_list(
        rows,
        form,
        next_url=next_url,
        prev_url=prev_url,
        total=queries.count_requests(get_session(), query, datetime.now(UTC)),
        sort_links=_sort_links(form),
    )


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
    return _render_list(
        rows,
        form,
        title="Subject search",
        searched=True,
        pseudonym=blind.hex(),
        kind=kind.value,
    )
