"""Retention of access requests: at its retention date an export is destroyed with the subject's
identifiers and the record ids read (crypto-shredding: ciphertexts set to NULL). The audit log,
which holds only counts and the export's SHA-256, still verifies; one leaf records each."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from erasure.access.models import (
    OPEN_ACCESS_STATUSES,
    AccessIdentifier,
    AccessRead,
    AccessRequest,
    AccessStatus,
)
from erasure.audit import leaves


def destroy_expired(session: Session, *, now: datetime | None = None, limit: int = 200) -> int:
    """Destroy what access requests past their retention date still hold; returns how many.
    Concurrent runs share the work (SKIP LOCKED). Does not commit."""
    now = now or datetime.now(UTC)
    due = session.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.status.not_in([*OPEN_ACCESS_STATUSES, AccessStatus.DESTROYED]),
            AccessRequest.expires_at <= now,
            AccessRequest.destroyed_at.is_(None),
        )
        .order_by(AccessRequest.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for access in due:
        shredded = session.execute(
            update(AccessIdentifier)
            .where(
                AccessIdentifier.request_id == access.id, AccessIdentifier.ciphertext.is_not(None)
            )
            .values(ciphertext=None, key_id=None, shredded_at=now)
            .returning(AccessIdentifier.id)
        ).all()
        session.execute(
            update(AccessRead)
            .where(AccessRead.request_id == access.id)
            .values(
                entries_ciphertext=None,
                key_id=None,
                end_user_id=None,
                conversation_id=None,
                conversation_identifier=None,
            )
        )
        had_export = access.export_ciphertext is not None
        access.export_ciphertext, access.export_key_id = None, None
        access.notes_ciphertext, access.notes_key_id = None, None
        access.cancel_reason_ciphertext, access.cancel_reason_key_id = None, None
        access.destroyed_at = now
        if access.status is AccessStatus.READY:
            access.status = AccessStatus.DESTROYED
        leaves.append(
            session,
            kind="access.export_destroyed",
            request_id=access.id,
            at=now,
            data={"export_destroyed": had_export, "identifiers_destroyed": len(shredded)},
        )
    session.flush()
    return len(due)
