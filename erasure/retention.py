"""Retention: a set time after a request ends, its subject identifiers are destroyed.

Crypto-shredding: the ciphertexts (identifiers, notes, cancel reason, notices' text) and the
Salesforce record ids are set to NULL; only the keyed pseudonyms stay, so "was this person erased?"
can still be answered and the audit log, which never held the identifiers, still verifies. One
leaf records each shredding. A cancel reason an older version left in plain text in the outcome is
removed too, and so are the override reasons given for its legal hold waits.

A legal hold's reason outlives the requests it covers: it is destroyed a retention period after
the hold ended (released, or past its end), with a `hold.shredded` leaf; the hold, its pseudonym
and its leaves stay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from erasure import free_text
from erasure.audit import leaves
from erasure.core.models import TERMINAL_REQUEST_STATUSES, ErasureRequest, SubjectIdentifier, Target
from erasure.notices.models import Notice
from erasure.pipeline.models import HoldWait, LegalHold


def shred_expired(
    session: Session, *, retention: timedelta, now: datetime | None = None, limit: int = 500
) -> int:
    """Destroy the identifiers of requests that ended more than `retention` ago; returns how many
    requests were shredded. Concurrent runs share the work (SKIP LOCKED). Does not commit."""
    now = now or datetime.now(UTC)
    cutoff = now - retention
    has_plaintext_material = or_(
        ErasureRequest.notes_ciphertext.is_not(None),
        ErasureRequest.cancel_reason_ciphertext.is_not(None),
        ErasureRequest.outcome.like(free_text.LEGACY_CANCEL_OUTCOME_LIKE),
        exists().where(
            SubjectIdentifier.request_id == ErasureRequest.id,
            SubjectIdentifier.ciphertext.is_not(None),
        ),
        exists().where(Target.request_id == ErasureRequest.id, Target.salesforce_id.is_not(None)),
        exists().where(Notice.request_id == ErasureRequest.id, Notice.text_ciphertext.is_not(None)),
        exists().where(
            HoldWait.request_id == ErasureRequest.id,
            HoldWait.override_reason_ciphertext.is_not(None),
        ),
    )
    due = session.scalars(
        select(ErasureRequest)
        .where(
            ErasureRequest.status.in_(TERMINAL_REQUEST_STATUSES),
            func.coalesce(ErasureRequest.completed_at, ErasureRequest.updated_at) < cutoff,
            has_plaintext_material,
        )
        .order_by(ErasureRequest.completed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for erasure_request in due:
        shredded_rows = session.execute(
            update(SubjectIdentifier)
            .where(
                SubjectIdentifier.request_id == erasure_request.id,
                SubjectIdentifier.ciphertext.is_not(None),
            )
            .values(ciphertext=None, key_id=None, shredded_at=now)
            .returning(SubjectIdentifier.id)
        ).all()
        session.execute(
            update(Target).where(Target.request_id == erasure_request.id).values(salesforce_id=None)
        )
        session.execute(
            update(Notice)
            .where(Notice.request_id == erasure_request.id)
            .values(text_ciphertext=None, text_key_id=None)
        )
        session.execute(
            update(HoldWait)
            .where(HoldWait.request_id == erasure_request.id)
            .values(override_reason_ciphertext=None, override_reason_key_id=None)
        )
        erasure_request.notes_ciphertext = None
        erasure_request.notes_key_id = None
        erasure_request.cancel_reason_ciphertext = None
        erasure_request.cancel_reason_key_id = None
        legacy = free_text.split_legacy_outcome(erasure_request.outcome)
        if legacy is not None:
            erasure_request.outcome = legacy[1]
        leaves.append(
            session,
            kind="subject.shredded",
            request_id=erasure_request.id,
            at=now,
            data={"identifiers_destroyed": len(shredded_rows), "retention_days": retention.days},
        )
    session.flush()
    return len(due)


def shred_ended_holds(
    session: Session, *, retention: timedelta, now: datetime | None = None, limit: int = 500
) -> list[uuid.UUID]:
    """Destroy the reasons of legal holds that ended (released, or past `ends_at`) more than
    `retention` ago; returns their ids. A hold still in force keeps its reason however old it
    is. Concurrent runs share the work (SKIP LOCKED). Does not commit."""
    now = now or datetime.now(UTC)
    ended_at = func.coalesce(LegalHold.released_at, LegalHold.ends_at)
    due = session.scalars(
        select(LegalHold)
        .where(LegalHold.reason_ciphertext.is_not(None), ended_at < now - retention)
        .order_by(ended_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for legal_hold in due:
        legal_hold.reason_ciphertext = None
        legal_hold.reason_key_id = None
        leaves.append(
            session,
            kind="hold.shredded",
            request_id=None,
            at=now,
            data={"hold": str(legal_hold.id), "retention_days": retention.days},
        )
    session.flush()
    return [legal_hold.id for legal_hold in due]
