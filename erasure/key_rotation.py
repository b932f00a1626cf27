"""Rotating the encryption key: re-seal everything sealed under an older key with the active one.

Put the new key first in ERASURE_ENCRYPTION_KEYS (keeping the old ones), run
`erasure keys reencrypt`, then remove the old keys. Rows are re-sealed in batches, each batch its
own transaction, so the job can be stopped and resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from erasure.identifiers import Sealed, Vault
from erasure.models import Credential, ErasureRequest, SubjectIdentifier
from erasure.orgs import secret_context
from erasure.workflow import identifier_context, notes_context


@dataclass
class RotationCount:
    identifiers: int = 0
    notes: int = 0
    credentials: int = 0

    @property
    def total(self) -> int:
        return self.identifiers + self.notes + self.credentials


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
