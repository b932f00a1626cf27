"""Bulk CSV upload: thousands of requests at once, each row validated like an API request, with a
report of the rejected rows (row number, field and reason: never the value), idempotent on
re-upload, and progress streamed to the page as chunks are committed (no JavaScript needed).

Columns (header row required; any order): phone, email, messaging_platform_key, contact_id,
messaging_end_user_ids (space-separated), regulation, org, received_at, reference_system,
reference_id, reference_url. A row is identified by its ticket reference; a row without one gets
reference system `csv` and an id derived (HMAC) from its pseudonyms and regulation, so the same row
uploaded again is recognised and skipped.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select, tuple_

from erasure import workflow
from erasure.core.models import ErasureRequest, Source
from erasure.errors import UnknownOrg
from erasure.ui import security
from erasure.ui.blueprint import bp
from erasure.ui.request_form import form_document, submission, validate_document
from erasure.web.inputs import ErasureRequestIn, ReferenceIn
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_ROWS = 50_000
CHUNK = 250
COLUMNS = (
    "phone",
    "email",
    "messaging_platform_key",
    "contact_id",
    "messaging_end_user_ids",
    "regulation",
    "org",
    "received_at",
    "reference_system",
    "reference_id",
    "reference_url",
)
SUBJECT_COLUMNS = COLUMNS[:5]

F = TypeVar("F", bound=Callable[..., Any])


def max_upload(limit: int) -> Callable[[F], F]:
    """Let this view's body be larger than the API's limit (read by the blueprint's guard)."""

    def mark(view: F) -> F:
        view.max_upload = limit  # type: ignore[attr-defined]
        return view

    return mark


def _reference(body: ErasureRequestIn) -> tuple[str, str]:
    reference = body.reference
    return (reference.system, reference.id) if reference else ("", "")


@dataclass
class Row:
    number: int
    body: ErasureRequestIn


@dataclass(frozen=True)
class Rejected:
    number: int
    field: str
    reason: str


def derived_reference(key: bytes, body: ErasureRequestIn) -> str:
    """A stable id for a row without a ticket reference: HMAC of what it asks, no raw identifier."""
    parts = sorted(f"{kind.value}:{value}" for kind, value in body.subject.identifier_pairs())
    message = "\n".join([body.regulation.value, body.org or "", *parts]).encode()
    return "row-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _header_fault(header: list[str]) -> str | None:
    """What is wrong with the header row, by column position: a header cell is never shown,
    since a file without a header row has a subject's identifiers in its first row."""
    needs = "needs a header row with at least `regulation` and one subject column"
    if not any(name in COLUMNS for name in header):
        return f"no header row: the file {needs}"
    unknown = [str(n) for n, name in enumerate(header, start=1) if name not in COLUMNS]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        return f"{len(unknown)} unknown column{plural} (column{plural} {', '.join(unknown)})"
    if "regulation" not in header:
        return f"the file {needs}"
    return None


def parse(data: bytes, key: bytes) -> tuple[list[Row], list[Rejected]]:
    """Validate every row. Rows repeating a reference already seen in the file are rejected."""
    rows: list[Row] = []
    rejected: list[Rejected] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [Rejected(0, "file", "is not UTF-8 text")]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    fault = _header_fault(header)
    if fault is not None:
        return [], [Rejected(1, "header", fault)]
    reader.fieldnames = header
    seen: set[tuple[str, str]] = set()
    for number, record in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            rejected.append(
                Rejected(number, "file", f"more than {MAX_ROWS} rows: the rest was not read")
            )
            break
        if None in record:
            rejected.append(Rejected(number, "row", "has more cells than the header"))
            continue
        fields = {name: (record.get(name) or "").strip() for name in COLUMNS}
        if not any(fields.values()):
            continue  # blank line
        subject: dict[str, Any] = {k: fields[k] for k in SUBJECT_COLUMNS[:-1] if fields[k]}
        if fields["messaging_end_user_ids"]:
            subject["messaging_end_user_ids"] = (
                fields["messaging_end_user_ids"].replace(",", " ").split()
            )
        body, errors = validate_document(form_document(subject, fields))
        if body is None:
            rejected.extend(Rejected(number, field, reason) for field, reason in errors.items())
            continue
        if body.reference is None:
            reference = ReferenceIn(system="csv", id=derived_reference(key, body), url=None)
            body = body.model_copy(update={"reference": reference})
        ref = _reference(body)
        if ref in seen:
            rejected.append(Rejected(number, "reference", "repeats an earlier row of this file"))
            continue
        seen.add(ref)
        rows.append(Row(number, body))
    return rows, rejected


@bp.route("/requests/bulk", methods=["GET", "POST"])
@security.requires("submit")
@max_upload(MAX_UPLOAD_BYTES)
def bulk_upload() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("ui/bulk.html", title="Bulk upload", columns=COLUMNS)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template(
            "ui/bulk.html", title="Bulk upload", columns=COLUMNS, error="Choose a CSV file."
        ), 422
    settings = web_resources().settings
    rows, rejected = parse(upload.read(), settings.pseudonym_key_bytes)
    session = get_session()
    user = security.current_user()
    user_id = user.id if user else None

    def generate() -> Iterator[str]:
        yield render_template(
            "ui/bulk_head.html", title="Bulk upload", total=len(rows), rejected=len(rejected)
        )
        created = skipped = failed = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            refs = [_reference(r.body) for r in chunk]
            existing = {
                (str(system), str(ref_id))
                for system, ref_id in session.execute(
                    select(ErasureRequest.reference_system, ErasureRequest.reference_id).where(
                        tuple_(ErasureRequest.reference_system, ErasureRequest.reference_id).in_(
                            refs
                        )
                    )
                )
            }
            for row in chunk:
                if _reference(row.body) in existing:
                    skipped += 1
                    continue
                try:
                    with session.begin_nested():
                        workflow.submit_request(
                            session,
                            submission(row.body, Source.UI),
                            protection=web_resources().protection,
                            default_org=settings.default_org,
                        )
                    created += 1
                except UnknownOrg as exc:
                    rejected.append(Rejected(row.number, "org", str(exc)))
                    failed += 1
            session.commit()
            kick_relay()
            done = min(start + CHUNK, len(rows))
            yield render_template(
                "ui/bulk_progress.html",
                done=done,
                total=len(rows),
                created=created,
                skipped=skipped,
            )
        logger.info(
            "console: user %s bulk upload: %d created, %d skipped, %d rejected",
            user_id,
            created,
            skipped,
            len(rejected),
        )
        yield render_template(
            "ui/bulk_tail.html",
            created=created,
            skipped=skipped,
            rejected=sorted(rejected, key=lambda r: (r.number, r.field)),
        )

    return Response(stream_with_context(generate()), mimetype="text/html")
