"""After a bulk upload is confirmed: how far its requests have gone (received, in progress,
completed, failed, ended otherwise), each linked, and the uploader's recent uploads. Read from
`bulk_upload_requests` and the requests' own states; a plain page, reloaded by a link (a timed
refresh would move the page under a screen reader's feet)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.core.models import BulkUpload, BulkUploadRequest, ErasureRequest, RequestStatus
from erasure.ui import security
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session

#: The progress page's groups, in the order a request moves through them.
GROUPS: tuple[tuple[str, str, tuple[RequestStatus, ...]], ...] = (
    (
        "received",
        "Received (waiting to start or for approval)",
        (RequestStatus.RECEIVED, RequestStatus.AWAITING_APPROVAL, RequestStatus.APPROVED),
    ),
    (
        "in_progress",
        "In progress",
        (
            RequestStatus.RESOLVING,
            RequestStatus.DELETING,
            RequestStatus.CONFIRMING,
            RequestStatus.ON_HOLD,
        ),
    ),
    ("completed", "Completed", (RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA)),
    ("failed", "Failed", (RequestStatus.FAILED,)),
    ("ended", "Cancelled or rejected", (RequestStatus.CANCELLED, RequestStatus.REJECTED)),
)
GROUP_OF = {status: key for key, _label, statuses in GROUPS for status in statuses}
#: The page lists at most this many of the upload's requests (the counts cover all of them).
LISTED = 500


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int]
    total: int

    @property
    def open(self) -> int:
        return self.counts["received"] + self.counts["in_progress"]


def progress(session: Session, upload_id: uuid.UUID) -> Progress:
    """Counts per group for one upload: one grouped statement, however many requests."""
    rows = session.execute(
        select(ErasureRequest.status, func.count())
        .join(BulkUploadRequest, BulkUploadRequest.request_id == ErasureRequest.id)
        .where(BulkUploadRequest.upload_id == upload_id)
        .group_by(ErasureRequest.status)
    ).all()
    counts = {key: 0 for key, _label, _statuses in GROUPS}
    for status, count in rows:
        counts[GROUP_OF[status]] += int(count)
    return Progress(counts, sum(counts.values()))


def recent_uploads(session: Session, user_id: uuid.UUID | None, limit: int = 10) -> list[Any]:
    """The user's latest uploads with how many requests each created (for the upload page)."""
    created = (
        select(func.count())
        .where(BulkUploadRequest.upload_id == BulkUpload.id)
        .correlate(BulkUpload)
        .scalar_subquery()
    )
    return list(
        session.execute(
            select(BulkUpload.id, BulkUpload.created_at, BulkUpload.rows, created.label("created"))
            .where(BulkUpload.user_id == user_id)
            .order_by(BulkUpload.created_at.desc())
            .limit(limit)
        ).all()
    )


@bp.get("/requests/bulk/<uuid:upload_id>")
@security.requires("view")
def bulk_upload_progress(upload_id: uuid.UUID) -> str:
    session = get_session()
    upload = session.get(BulkUpload, upload_id)
    if upload is None:
        abort(404)
    requests = session.scalars(
        select(ErasureRequest)
        .join(BulkUploadRequest, BulkUploadRequest.request_id == ErasureRequest.id)
        .where(BulkUploadRequest.upload_id == upload_id)
        .order_by(ErasureRequest.created_at, ErasureRequest.id)
        .limit(LISTED)
    ).all()
    return render_template(
        "ui/bulk_upload_progress.html",
        title="Bulk upload: progress",
        upload=upload,
        progress=progress(session, upload_id),
        groups=GROUPS,
        group_of=GROUP_OF,
        requests=requests,
        listed=LISTED,
        now=datetime.now(UTC),
    )
