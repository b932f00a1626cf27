"""The filtered request list as CSV: ids, states, dates and ticket references; no personal
data."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import (
    Response,
    stream_with_context,
)
from flask.typing import ResponseReturnValue

from erasure.ui import queries, security
from erasure.ui.blueprint import bp
from erasure.ui.request_list import filters
from erasure.web.resources import get_session

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


@bp.get("/requests.csv")
@security.requires("view")
def request_list_csv() -> ResponseReturnValue:
    """The filtered list as CSV: ids, states, dates and ticket references; no personal data."""
    query, _form = filters()
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
