"""OpenDSR `access` subject requests, the access side: open one under the controller's
`subject_request_id`, find it again, tell a retry from a conflict, and say its progress in
OpenDSR's statuses (erasure.api.opendsr_subjects puts erasures and access requests under one id
space). Status callbacks are delivered for erasures only, so an access request is polled.
Nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.access.intake import submit_access
from erasure.access.models import AccessIdentifier, AccessRequest, AccessStatus
from erasure.core.models import Regulation, Source
from erasure.errors import NotFound
from erasure.identifiers import pseudonym


@dataclass(frozen=True)
class OpenDsrAccess:
    subject_request_id: str
    api_key_id: uuid.UUID
    regulation: Regulation
    identifiers: Sequence[workflow.Identifier]
    submitted_time: datetime | None


_STATUSES = {
    AccessStatus.RECEIVED: "pending",
    AccessStatus.RETRIEVING: "in_progress",
    AccessStatus.READY: "completed",
    AccessStatus.COMPLETED_NO_DATA: "completed",
    # Disclosed, then destroyed at its retention date: still a completed request.
    AccessStatus.DESTROYED: "completed",
    AccessStatus.FAILED: "cancelled",
    AccessStatus.CANCELLED: "cancelled",
}


def opendsr_status(status: AccessStatus) -> str:
    return _STATUSES[status]


def find_access(
    session: Session, *, api_key_id: uuid.UUID, subject_request_id: str
) -> AccessRequest:
    access = session.scalar(
        select(AccessRequest).where(
            AccessRequest.source == Source.OPENDSR,
            AccessRequest.api_key_id == api_key_id,
            AccessRequest.reference_id == subject_request_id,
        )
    )
    if access is None:
        raise NotFound("no such subject request")
    return access


def submit(
    session: Session,
    request: OpenDsrAccess,
    *,
    protection: workflow.Protection,
    default_org: str | None,
) -> AccessRequest:
    """A new access request for the subject request (raises UnknownOrg)."""
    return submit_access(
        session,
        workflow.Submission(
            identifiers=request.identifiers,
            regulation=request.regulation,
            source=Source.OPENDSR,
            received_at=request.submitted_time,
            reference_system="opendsr",
            reference_id=request.subject_request_id,
            api_key_id=request.api_key_id,
            submitted_by=f"opendsr:{request.api_key_id}",
        ),
        protection=protection,
        default_org=default_org,
    )


def same_access(
    session: Session, existing: AccessRequest, request: OpenDsrAccess, key: bytes
) -> bool:
    """A retry of `existing`: the same subject (by pseudonyms), regulation and submitted time."""
    subject = {
        (identifier.kind, pseudonym(key, identifier.kind, identifier.value))
        for identifier in request.identifiers
    }
    stored = {
        (kind, bytes(blind))
        for kind, blind in session.execute(
            select(AccessIdentifier.kind, AccessIdentifier.blind_index).where(
                AccessIdentifier.request_id == existing.id
            )
        )
    }
    return (
        subject == stored
        and existing.regulation is request.regulation
        and (request.submitted_time is None or request.submitted_time == existing.received_at)
    )
