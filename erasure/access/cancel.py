"""Cancel an access request before its export is built. What was read so far is discarded (the
sealed entries and the record ids with them): nothing will be disclosed, so nothing is kept.
Once the export is built there is nothing left to stop; it is disclosed and destroyed at its
retention date, so a cancel is refused. The reason is free text (it may name the subject): it
is sealed like an erasure request's (erasure.free_text), and the outcome is a fixed phrase.
Framework-free; nothing here commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from erasure.access.models import OPEN_ACCESS_STATUSES, AccessRead, AccessRequest, AccessStatus
from erasure.audit import leaves
from erasure.errors import InvalidTransition, NotFound
from erasure.free_text import cancelled_outcome, seal_cancel_reason
from erasure.identifiers import Vault

#: An export exists (or existed): the request has been carried out.
_DISCLOSED = frozenset({AccessStatus.READY, AccessStatus.DESTROYED})


def cancel_access(
    session: Session,
    request_id: uuid.UUID,
    *,
    reason: str,
    vault: Vault,
    retention: timedelta,
    api_key_id: uuid.UUID | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> AccessRequest:
    """Cancel an open access request (received or retrieving). Raises NotFound (absent, or
    another integration's), InvalidTransition (its export is built, or it has ended)."""
    access = session.scalar(
        select(AccessRequest).where(AccessRequest.id == request_id).with_for_update()
    )
    if access is None or (api_key_id is not None and access.api_key_id != api_key_id):
        raise NotFound("no such access request")
    if access.status in _DISCLOSED:
        raise InvalidTransition(
            "the export is already built: it stays available until its retention date"
        )
    if access.status not in OPEN_ACCESS_STATUSES:
        raise InvalidTransition(f"the access request is already {access.status.value}")
    now = now or datetime.now(UTC)
    previous = access.status
    # A retrieval run still working on it finds its reads gone (erasure.access.retrieve marks
    # a read only while it exists) and the request no longer open, so it builds nothing.
    discarded = session.execute(
        delete(AccessRead).where(AccessRead.request_id == access.id).returning(AccessRead.id)
    ).all()
    access.status = AccessStatus.CANCELLED
    access.attempt += 1
    access.next_attempt_at = None
    access.outcome = cancelled_outcome(0)
    # The identifiers, notes and reason are destroyed when an export would have been.
    access.expires_at = now + retention
    seal_cancel_reason(vault, access, reason)
    leaves.append(
        session,
        kind="access.cancelled",
        request_id=access.id,
        at=now,
        data={"from_status": previous.value, "reads_discarded": len(discarded), "by": by},
    )
    session.flush()
    return access
