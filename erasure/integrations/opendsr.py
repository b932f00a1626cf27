"""OpenDSR 2.0 as a processor: create an erasure (the controller's `subject_request_id` is the
idempotency key: the same request again is answered with the first, a different one under the
same id is a conflict), read its status, cancel it while pending; callbacks to
`status_callback_urls` are delivery rows of the `opendsr` channel
(erasure.integrations.callbacks). Nothing here commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Regulation,
    Source,
    SubjectIdentifier,
)
from erasure.errors import ErasureError, InvalidTransition, NotFound
from erasure.identifiers import pseudonym
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackChannel, CallbackSubscription
from erasure.integrations.transport import AddressGuard

API_VERSION = "2.0"
IDENTITY_KINDS = {"email": IdentifierKind.EMAIL, "phone_number": IdentifierKind.PHONE}
REGULATIONS = {"gdpr": Regulation.GDPR, "ccpa": Regulation.CCPA, "lgpd": Regulation.LGPD}


@dataclass(frozen=True)
class OpenDsrRequest:
    subject_request_id: str
    regulation: Regulation
    identifiers: Sequence[workflow.Identifier]
    submitted_time: datetime | None
    status_callback_urls: Sequence[str]
    #: `erasure` or `access` (erasure.access.opendsr_intake opens the latter).
    request_type: str = "erasure"
    #: From our extension: conversations only (their ids among `identifiers`), the end users kept.
    scope: ErasureScope = ErasureScope.SUBJECT


class SubjectRequestConflict(ErasureError):
    """A `subject_request_id` already used for a different request (another subject, regulation,
    submitted time or set of callback URLs)."""

    code = "subject_request_conflict"


def lock_key(api_key_id: uuid.UUID, subject_request_id: str) -> int:
    digest = hashlib.sha256(f"opendsr:{api_key_id}:{subject_request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def find(session: Session, *, api_key_id: uuid.UUID, subject_request_id: str) -> ErasureRequest:
    erasure_request = session.scalar(
        select(ErasureRequest).where(
            ErasureRequest.source == Source.OPENDSR,
            ErasureRequest.api_key_id == api_key_id,
            ErasureRequest.reference_id == subject_request_id,
        )
    )
    if erasure_request is None:
        raise NotFound("no such subject request")
    return erasure_request


def create(
    session: Session,
    request: OpenDsrRequest,
    *,
    api_key_id: uuid.UUID,
    protection: workflow.Protection,
    default_org: str | None,
    guard: AddressGuard,
) -> tuple[ErasureRequest, bool]:
    """The erasure for this subject request: (request, True) when created now, (the existing
    one, False) on a retry of the same request. Raises InvalidCallbackUrl, UnknownOrg,
    SubjectRequestConflict."""
    for url in request.status_callback_urls:
        callbacks.check_url(url, guard=guard)
    session.execute(
        select(func.pg_advisory_xact_lock(lock_key(api_key_id, request.subject_request_id)))
    )
    try:
        existing = find(
            session, api_key_id=api_key_id, subject_request_id=request.subject_request_id
        )
    except NotFound:
        pass
    else:
        if not _same_request(session, existing, request, protection.pseudonym_key):
            raise SubjectRequestConflict(
                "this subject_request_id was already used for a different request"
            )
        return existing, False
    erasure_request = workflow.submit_request(
        session,
        workflow.Submission(
            identifiers=request.identifiers,
            regulation=request.regulation,
            source=Source.OPENDSR,
            received_at=request.submitted_time,
            reference_system="opendsr",
            reference_id=request.subject_request_id,
            api_key_id=api_key_id,
            submitted_by=f"opendsr:{api_key_id}",
            scope=request.scope,
        ),
        protection=protection,
        default_org=default_org,
    )
    for url in dict.fromkeys(request.status_callback_urls):
        callbacks.subscribe(
            session,
            url=url,
            vault=protection.vault,
            guard=guard,
            channel=CallbackChannel.OPENDSR,
            request_id=erasure_request.id,
        )
    return erasure_request, True


def _same_request(
    session: Session, existing: ErasureRequest, request: OpenDsrRequest, pseudonym_key: bytes
) -> bool:
    """Is `request` a retry of `existing`? Compared by what the request means, not its bytes
    (member order, whitespace and extensions do not matter): the subject, by the identifiers'
    pseudonyms (they outlive the sealed values, which retention destroys, and include the
    listed conversations), the scope, the regulation, the submitted time when given, and the
    callback URLs."""
    subject = {
        (identifier.kind, pseudonym(pseudonym_key, identifier.kind, identifier.value))
        for identifier in request.identifiers
    }
    stored = {
        (kind, bytes(blind))
        for kind, blind in session.execute(
            select(SubjectIdentifier.kind, SubjectIdentifier.blind_index).where(
                SubjectIdentifier.request_id == existing.id
            )
        )
    }
    urls = set(
        session.scalars(
            select(CallbackSubscription.url).where(
                CallbackSubscription.request_id == existing.id,
                CallbackSubscription.channel == CallbackChannel.OPENDSR,
            )
        )
    )
    return (
        subject == stored
        and existing.scope is request.scope
        and existing.regulation is request.regulation
        and (request.submitted_time is None or request.submitted_time == existing.received_at)
        and set(request.status_callback_urls) == urls
    )


#: Why a controller's cancel is recorded (a fixed phrase: OpenDSR sends no reason).
CANCEL_REASON = "cancelled by the controller (OpenDSR)"


def cancellable(
    session: Session, *, api_key_id: uuid.UUID, subject_request_id: str
) -> ErasureRequest:
    """The subject request a controller may cancel: only while pending (OpenDSR: not once
    processing began). Raises NotFound, InvalidTransition; the edge then cancels it through
    erasure.lifecycle.operations."""
    erasure_request = find(session, api_key_id=api_key_id, subject_request_id=subject_request_id)
    if callbacks.opendsr_status(erasure_request.status) != "pending":
        raise InvalidTransition("only a pending subject request can be cancelled")
    return erasure_request
