"""The filtered request list as CSV: ids, states, dates and ticket references; no personal
data."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import (
    Response,
    stream_with_context,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from erasure.core import request_pages
from erasure.core.models import ErasureRequest
from erasure.ui import queries, security
from erasure.ui.blueprint import bp
from erasure.ui.request_list import filters
from erasure.web.resources import stream_session

logger = logging.getLogger(__name__)

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


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(r: ErasureRequest, now: datetime) -> list[str]:
    return [
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
            r.predicted_completion_at.isoformat() if r.predicted_completion_at else None,
            r.completed_at.isoformat() if r.completed_at else None,
            r.duplicate_of_id,
        )
    ]


def _pages(session: Session, query: queries.ListQuery, now: datetime) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after = query.after
    written = 0
    while written < CSV_MAX_ROWS:
        page = queries.list_requests(
            session, dataclasses.replace(query, after=after, limit=1000), now
        )
        writer.writerows(_row(r, now) for r in page)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        written += len(page)
        if len(page) < 1000:
            break
        after = request_pages.cursor_of(page[-1], query.order)


def csv_response(query: queries.ListQuery) -> Response:
    """The requests `query` matches as a streamed CSV, in 1000-row keyset pages from its cursor:
    ids, states, dates and ticket references; no personal data."""
    now = datetime.now(UTC)
    scope = stream_session()

    def generate() -> Iterator[str]:
        with scope as session:
            yield from _pages(session, query, now)

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="erasure-requests-{now.strftime("%Y%m%d-%H%M%S")}.csv"'
    )
    return response


@bp.get("/requests.csv")
@security.requires("view")
def request_list_csv() -> ResponseReturnValue:
    """The filtered list as CSV, in the list's order."""
    query, _form = filters()
    return csv_response(query)
