"""Rotating the encryption key re-seals every identifier, note and client secret."""

from __future__ import annotations

import os

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.identifiers import Sealed, Vault
from erasure.key_rotation import reencrypt_batch
from erasure.models import Credential, ErasureRequest, Org, SubjectIdentifier
from erasure.orgs import add_credential, client_secret
from erasure.workflow import Protection, identifier_context, notes_context


def test_reencrypt_moves_everything_to_the_new_key(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    protection: Protection,
    settings: Settings,
) -> None:
    add_credential(
        db_session, protection.vault, org, name="eu-1", client_id="id", client_secret="s3cret"
    )
    body = {
        "subject": {"phone": "+14155552671", "email": "a@example.com"},
        "regulation": "gdpr",
        "notes": "call back",
    }
    request_id = client.post("/v1/erasure-requests", json=body, headers=officer_headers).get_json()[
        "id"
    ]
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    count = reencrypt_batch(db_session, rotated)
    assert count.identifiers >= 2 and count.notes >= 1 and count.credentials >= 1
    assert reencrypt_batch(db_session, rotated).total == 0  # idempotent
    only_new = Vault({"new": new_key})  # the old key can now be dropped
    for row in db_session.scalars(
        select(SubjectIdentifier).where(SubjectIdentifier.request_id == request_id)
    ):
        assert row.key_id == "new" and row.ciphertext is not None
        assert only_new.open(
            Sealed("new", row.ciphertext), context=identifier_context(row.request_id, row.kind)
        )
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None and stored.notes_ciphertext is not None
    assert (
        only_new.open(Sealed("new", stored.notes_ciphertext), context=notes_context(stored.id))
        == "call back"
    )
    credential = db_session.scalar(select(Credential).where(Credential.org_id == org.id))
    assert credential is not None and client_secret(only_new, org, credential) == "s3cret"
