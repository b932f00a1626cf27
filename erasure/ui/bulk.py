"""Bulk CSV upload: thousands of requests at once, each row validated like an API request. First
a check ("18 will be submitted, 2 have problems", the rejected rows by row number, field and
reason: never the value), then, once confirmed, the submission with progress streamed to the page
as chunks are committed (no JavaScript needed), and the result with links to the requests it
created (source `bulk`). Idempotent on re-upload.

Columns (header row required; any order): phone, email, messaging_platform_key, contact_id,
messaging_end_user_ids (space-separated), regulation, org, received_at, reference_system,
reference_id, reference_url, and for a conversations-only erasure scope (`subject` or
`conversations`) and conversations (space-separated Conversation ids; listing some implies scope
`conversations`), as the API takes them. A row is identified by its ticket reference; a row without
one gets reference system `csv` and an id derived (HMAC) from its pseudonyms, scope and regulation,
so the same row uploaded again is recognised and skipped.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from flask import Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.core.models import (
    BulkUpload,
    BulkUploadRequest,
    ErasureRequest,
    ErasureScope,
    Source,
)
from erasure.errors import UnknownOrg
from erasure.identifiers import Sealed
from erasure.ui import bulk_progress, security
from erasure.ui.blueprint import bp
from erasure.ui.request_form import form_document, submission, validate_document
from erasure.web.inputs import ErasureRequestIn, ErasureSubmissionIn, ReferenceIn
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
    "scope",
    "conversations",
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
    """A stable id for a row without a ticket reference: HMAC of what it asks (its conversations
    and scope too), no raw identifier."""
    pairs = body.subject.identifier_pairs()
    scope: list[str] = []
    if isinstance(body, ErasureSubmissionIn):
        pairs = body.identifier_pairs()
        if body.effective_scope() is not ErasureScope.SUBJECT:
            # Only when not the subject: a subject row keeps the id it had before the column.
            scope = [f"scope:{body.effective_scope().value}"]
    parts = sorted(f"{kind.value}:{value}" for kind, value in pairs)
    message = "\n".join([body.regulation.value, body.org or "", *parts, *scope]).encode()
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
        document = form_document(subject, fields)
        if fields["scope"]:
            document["scope"] = fields["scope"]
        if fields["conversations"]:
            document["conversations"] = fields["conversations"].replace(",", " ").split()
        body, errors = validate_document(document)
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


#: A preview's sealed file is accepted for this long: the confirmation is expected at once.
PREVIEW_VALID = timedelta(hours=1)
#: The result page links to at most this many of the requests an upload created.
LINKED = 200


def _sealing_context(user_id: object, issued: str) -> str:
    return f"bulk-upload:{user_id}:{issued}"


def _existing(session: Session, refs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these ticket references a request already has (one query per chunk)."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start : start + CHUNK]
        found |= {
            (str(system), str(ref_id))
            for system, ref_id in session.execute(
                select(ErasureRequest.reference_system, ErasureRequest.reference_id).where(
                    tuple_(ErasureRequest.reference_system, ErasureRequest.reference_id).in_(chunk)
                )
            )
        }
    return found


def _form(error: str | None = None) -> str:
    user = security.current_user()
    return render_template(
        "ui/bulk.html",
        title="Bulk upload",
        columns=COLUMNS,
        error=error,
        uploads=bulk_progress.recent_uploads(get_session(), user.id if user else None),
    )


@bp.route("/requests/bulk", methods=["GET", "POST"])
@security.requires("submit")
@max_upload(MAX_UPLOAD_BYTES)
def bulk_upload() -> ResponseReturnValue:
    """Step one: check every row and say what would happen; nothing is submitted yet. The file
    goes back in the confirmation form sealed with the identifier key (bound to this user and
    time), so the page never holds an identifier in the clear and nothing is kept server-side."""
    if request.method == "GET":
        return _form()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form("Choose a CSV file."), 422
    data = upload.read()
    settings = web_resources().settings
    rows, rejected = parse(data, settings.pseudonym_key_bytes)
    existing = _existing(get_session(), [_reference(r.body) for r in rows])
    new = sum(1 for r in rows if _reference(r.body) not in existing)
    sealed = None
    issued = datetime.now(UTC).isoformat()
    if new:
        user = security.current_user()
        box = web_resources().protection.vault.seal(
            data.decode("utf-8-sig"), context=_sealing_context(user.id if user else None, issued)
        )
        sealed = {
            "key_id": box.key_id,
            "sealed": base64.b64encode(box.ciphertext).decode(),
            "issued": issued,
        }
    return render_template(
        "ui/bulk_preview.html",
        title="Bulk upload: check",
        new=new,
        already=len(rows) - new,
        problems=len({r.number for r in rejected}),
        rejected=sorted(rejected, key=lambda r: (r.number, r.field)),
        sealed=sealed,
    )


def _opened() -> bytes | None:
    """The previewed file back from the confirmation form, or None if it is not this user's,
    is too old, or was altered."""
    user = security.current_user()
    issued = request.form.get("issued", "")
    try:
        at = datetime.fromisoformat(issued)
        if at.tzinfo is None or datetime.now(UTC) - at > PREVIEW_VALID:
            return None
        box = Sealed(request.form.get("key_id", ""), base64.b64decode(request.form["sealed"]))
        text = web_resources().protection.vault.open(
            box, context=_sealing_context(user.id if user else None, issued)
        )
    except (KeyError, ValueError, LookupError, binascii.Error, InvalidTag):
        return None
    return text.encode()


@bp.post("/requests/bulk/confirm")
@security.requires("submit")
@max_upload(2 * MAX_UPLOAD_BYTES)
def bulk_confirm() -> ResponseReturnValue:
    """Step two: submit the previewed rows, with progress streamed chunk by chunk inside the
    console's own page (header and navigation included), then the result and a link to the
    upload's progress page, where its requests are followed afterwards (bulk_progress)."""
    data = _opened()
    if data is None:
        return _form("That check has expired or is not valid: upload the file again."), 422
    settings = web_resources().settings
    rows, rejected = parse(data, settings.pseudonym_key_bytes)
    session = get_session()
    user = security.current_user()
    user_id = user.id if user else None
    marker = "<!--bulk-progress-->"
    head, tail = render_template(
        "ui/bulk_result.html", title="Bulk upload", marker=marker, total=len(rows)
    ).split(marker, 1)
    # The wall clock, not the transaction's now(): uploads are listed newest first.
    upload = BulkUpload(user_id=user_id, rows=len(rows), created_at=datetime.now(UTC))
    session.add(upload)
    session.flush()
    upload_id = upload.id
    session.commit()  # the progress page exists even if no row ends up created

    def generate() -> Iterator[str]:
        yield head
        created: list[uuid.UUID] = []
        skipped = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            existing = _existing(session, [_reference(r.body) for r in chunk])
            for row in chunk:
                if _reference(row.body) in existing:
                    skipped += 1
                    continue
                try:
                    with session.begin_nested():
                        made = workflow.submit_request(
                            session,
                            submission(row.body, Source.BULK),
                            protection=web_resources().protection,
                            default_org=settings.default_org,
                        )
                    created.append(made.id)
                    session.add(BulkUploadRequest(upload_id=upload_id, request_id=made.id))
                except UnknownOrg as exc:
                    rejected.append(Rejected(row.number, "org", str(exc)))
            session.commit()
            kick_relay()
            yield render_template(
                "ui/bulk_progress.html",
                done=min(start + CHUNK, len(rows)),
                total=len(rows),
                created=len(created),
                skipped=skipped,
            )
        logger.info(
            "console: user %s bulk upload: %d created, %d skipped, %d rejected",
            user_id,
            len(created),
            skipped,
            len(rejected),
        )
        yield render_template(
            "ui/bulk_tail.html",
            created=len(created),
            created_ids=created[:LINKED],
            upload_id=upload_id,
            skipped=skipped,
            rejected=sorted(rejected, key=lambda r: (r.number, r.field)),
        )
        yield tail

    return Response(stream_with_context(generate()), mimetype="text/html")
