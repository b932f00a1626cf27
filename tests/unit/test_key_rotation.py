"""Rotating the encryption key re-seals every identifier, note and client secret."""

from __future__ import annotations

import os
import uuid

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.core.models import Credential, ErasureRequest, Org, SubjectIdentifier
from erasure.free_text import notes_context, open_cancel_reason
from erasure.identifiers import Sealed, Vault, identifier_context
from erasure.key_rotation import reencrypt_batch
from erasure.orgs import add_credential, client_secret
from erasure.workflow import Protection


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


def test_reencrypt_seals_cancel_reasons_and_those_left_in_old_outcomes(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    settings: Settings,
) -> None:
    ids = []
    for n in range(2):
        body = {"subject": {"phone": f"+1415555267{n}"}, "regulation": "gdpr"}
        request_id = client.post(
            "/v1/erasure-requests", json=body, headers=officer_headers
        ).get_json()["id"]
        cancelled = client.post(
            f"/v1/erasure-requests/{request_id}/cancel",
            json={"reason": f"reason {n}; with a semicolon"},
            headers=officer_headers,
        )
        assert cancelled.status_code == 200
        ids.append(uuid.UUID(request_id))
    # The second was cancelled by an earlier version: its reason is in the outcome, in clear.
    legacy = db_session.get(ErasureRequest, ids[1])
    assert legacy is not None
    legacy.cancel_reason_ciphertext = legacy.cancel_reason_key_id = None
    legacy.outcome = (
        "cancelled: reason 1; with a semicolon; 2 deletion(s) already sent to Salesforce could "
        "not be stopped; 1 more deletion(s) were already on their way to Salesforce and could "
        "not be stopped"
    )
    db_session.flush()
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    assert reencrypt_batch(db_session, rotated).cancel_reasons >= 2
    assert reencrypt_batch(db_session, rotated).total == 0  # idempotent
    only_new = Vault({"new": new_key})
    for n, request_id in enumerate(ids):
        row = db_session.get(ErasureRequest, request_id)
        assert row is not None and row.cancel_reason_key_id == "new"
        assert open_cancel_reason(only_new, row) == f"reason {n}; with a semicolon"
    assert legacy.outcome == (
        "cancelled; 2 deletion(s) already sent to Salesforce could not be stopped; 1 more "
        "deletion(s) were already on their way to Salesforce and could not be stopped"
    )
