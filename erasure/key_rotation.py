"""Rotating the encryption key: re-seal everything sealed under an older key with the active one
(and seal the cancel reasons earlier versions kept in plain text in the outcome).

Put the new key first in ERASURE_ENCRYPTION_KEYS (keeping the old ones), run
`erasure encryption-keys reencrypt`, then remove the old keys. Rows are re-sealed in batches, each batch its
own transaction, so the job can be stopped and resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from erasure import free_text
from erasure.access.disclose import export_context, read_context
from erasure.access.models import AccessIdentifier, AccessRead, AccessRequest
from erasure.core.models import Credential, ErasureRequest, RequestStatus, SubjectIdentifier
from erasure.free_text import cancel_reason_context, notes_context
from erasure.identifiers import Sealed, Vault, identifier_context
from erasure.notices.issuing import text_context
from erasure.notices.models import Notice
from erasure.orgs import secret_context
from erasure.pipeline.holds import override_context, reason_context
from erasure.pipeline.models import HoldWait, LegalHold


@dataclass
class RotationCount:
    identifiers: int = 0
    notes: int = 0
    cancel_reasons: int = 0
    credentials: int = 0
    notices: int = 0
    hold_reasons: int = 0  # legal holds' reasons and hold override reasons
    access: int = 0  # access requests' identifiers, notes, entries read and exports

    @property
    def total(self) -> int:
        return (
            self.identifiers
            + self.notes
            + self.cancel_reasons
            + self.credentials
            + self.notices
            + self.hold_reasons
            + self.access
        )


def reencrypt_batch(session: Session, vault: Vault, *, batch: int = 500) -> RotationCount:
    """Re-seal up to `batch` rows of each kind still under an older key. Does not commit."""
    active = vault.active_key_id
    count = RotationCount()
    identifiers = session.scalars(
        select(SubjectIdentifier)
        .where(SubjectIdentifier.ciphertext.is_not(None), SubjectIdentifier.key_id != active)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for row in identifiers:
        if row.ciphertext is None or row.key_id is None:  # excluded by the query; narrows types
            continue
        context = identifier_context(row.request_id, row.kind)
        sealed = vault.seal(
            vault.open(Sealed(row.key_id, row.ciphertext), context=context), context=context
        )
        row.ciphertext, row.key_id = sealed.ciphertext, sealed.key_id
        count.identifiers += 1
    requests = session.scalars(
        select(ErasureRequest)
        .where(ErasureRequest.notes_ciphertext.is_not(None), ErasureRequest.notes_key_id != active)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for request in requests:
        if request.notes_ciphertext is None or request.notes_key_id is None:
            continue
        context = notes_context(request.id)
        sealed = vault.seal(
            vault.open(Sealed(request.notes_key_id, request.notes_ciphertext), context=context),
            context=context,
        )
        request.notes_ciphertext, request.notes_key_id = sealed.ciphertext, sealed.key_id
        count.notes += 1
    count.cancel_reasons = _reseal_cancel_reasons(session, vault, batch=batch)
    count.notices = _reseal_notices(session, vault, batch=batch)
    count.hold_reasons = _reseal_hold_reasons(session, vault, batch=batch)
    count.access = _reseal_access(session, vault, batch=batch)
    credentials = session.scalars(
        select(Credential)
        .where(Credential.key_id != active)
        .options(selectinload(Credential.org))
        .limit(batch)
    ).all()
    for credential in credentials:
        context = secret_context(credential.org.name, credential.name)
        secret = vault.open(
            Sealed(credential.key_id, credential.client_secret_ciphertext), context=context
        )
        sealed = vault.seal(secret, context=context)
        credential.client_secret_ciphertext, credential.key_id = sealed.ciphertext, sealed.key_id
        count.credentials += 1
    session.flush()
    return count


def _reseal_cancel_reasons(session: Session, vault: Vault, *, batch: int) -> int:
    """Cancel reasons under an older key, and those an older version left in plain text in the
    outcome ("cancelled: <reason>..."): sealed under the active key, the outcome made the fixed
    phrase. (A migration cannot do the latter: it has no keys.)"""
    active = vault.active_key_id
    requests = session.scalars(
        select(ErasureRequest)
        .where(
            or_(
                and_(
                    ErasureRequest.cancel_reason_ciphertext.is_not(None),
                    ErasureRequest.cancel_reason_key_id != active,
                ),
                and_(
                    ErasureRequest.status == RequestStatus.CANCELLED,
                    ErasureRequest.cancel_reason_ciphertext.is_(None),
                    ErasureRequest.outcome.like(free_text.LEGACY_CANCEL_OUTCOME_LIKE),
                ),
            )
        )
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    resealed = 0
    for request in requests:
        reason = free_text.open_cancel_reason(vault, request)
        if reason is None:
            legacy = free_text.split_legacy_outcome(request.outcome)
            if legacy is None:  # not reached: every outcome the query matched has the old form
                continue
            reason, request.outcome = legacy
        free_text.seal_cancel_reason(vault, request, reason)
        resealed += 1
    return resealed


def _reseal_notices(session: Session, vault: Vault, *, batch: int) -> int:
    """Notices' text (subject and letter) under an older key."""
    return _reseal_rows(
        session,
        vault,
        Notice,
        ("text_ciphertext", "text_key_id"),
        lambda row: text_context(row.id),
        batch=batch,
    )


def _reseal(vault: Vault, key_id: str, ciphertext: bytes, context: str) -> Sealed:
    return vault.seal(vault.open(Sealed(key_id, ciphertext), context=context), context=context)


def _reseal_hold_reasons(session: Session, vault: Vault, *, batch: int) -> int:
    """Legal holds' reasons and override reasons under an older key (a hold outlives the
    requests it covers, so its reason may be sealed under a key long since rotated out)."""
    return _reseal_rows(
        session,
        vault,
        LegalHold,
        ("reason_ciphertext", "reason_key_id"),
        lambda row: reason_context(row.id),
        batch=batch,
    ) + _reseal_rows(
        session,
        vault,
        HoldWait,
        ("override_reason_ciphertext", "override_reason_key_id"),
        lambda row: override_context(row.id),
        batch=batch,
    )


def _reseal_rows(
    session: Session,
    vault: Vault,
    model: Any,
    columns: tuple[str, str],
    context_of: Callable[[Any], str],
    *,
    batch: int,
) -> int:
    """Re-seal up to `batch` rows of `model` whose (ciphertext, key id) `columns` are under an
    older key, each opened and sealed again with the context `context_of(row)` binds it to."""
    ciphertext_column, key_column = (getattr(model, name) for name in columns)
    rows = session.scalars(
        select(model)
        .where(ciphertext_column.is_not(None), key_column != vault.active_key_id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        sealed = _reseal(vault, getattr(row, columns[1]), getattr(row, columns[0]), context_of(row))
        setattr(row, columns[0], sealed.ciphertext)
        setattr(row, columns[1], sealed.key_id)
    return len(rows)


def _reseal_access(session: Session, vault: Vault, *, batch: int) -> int:
    """What access requests keep sealed (identifiers, notes, cancel reason, entries read,
    export): without this, removing the old key would leave their exports unreadable before
    their retention date."""
    return (
        _reseal_rows(
            session,
            vault,
            AccessIdentifier,
            ("ciphertext", "key_id"),
            lambda row: identifier_context(row.request_id, row.kind),
            batch=batch,
        )
        + _reseal_rows(
            session,
            vault,
            AccessRequest,
            ("notes_ciphertext", "notes_key_id"),
            lambda row: notes_context(row.id),
            batch=batch,
        )
        + _reseal_rows(
            session,
            vault,
            AccessRequest,
            ("export_ciphertext", "export_key_id"),
            lambda row: export_context(row.id),
            batch=batch,
        )
        + _reseal_rows(
            session,
            vault,
            AccessRequest,
            ("cancel_reason_ciphertext", "cancel_reason_key_id"),
            lambda row: cancel_reason_context(row.id),
            batch=batch,
        )
        + _reseal_rows(
            session,
            vault,
            AccessRead,
            ("entries_ciphertext", "key_id"),
            lambda row: read_context(row.id),
            batch=batch,
        )
    )
