"""Crypto-shredding: identifiers are destroyed after retention; pseudonym lookups and
certificates keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, SubjectIdentifier, Target
from erasure.retention import shred_expired
from tests.support.audited_requests import checkpoint_now, complete, submit


def test_identifiers_are_destroyed_after_retention_and_evidence_still_verifies(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    signing_key: SigningKey,
) -> None:
    old = submit(client, officer_headers, "+14155550111")
    fresh = submit(client, officer_headers, "+14155550112")
    still_open = submit(client, officer_headers, "+14155550113")
    for request_id in (old, fresh):
        complete(db_session, request_id, org)
    old_request = db_session.get(ErasureRequest, old)
    assert old_request is not None
    old_request.completed_at = datetime.now(UTC) - timedelta(days=100)
    db_session.flush()

    assert shred_expired(db_session, retention=timedelta(days=90)) == 1
    assert shred_expired(db_session, retention=timedelta(days=90)) == 0  # nothing left to shred

    def ciphertexts(request_id: str) -> list[bytes | None]:
        return list(
            db_session.scalars(
                select(SubjectIdentifier.ciphertext).where(
                    SubjectIdentifier.request_id == request_id
                )
            )
        )

    assert ciphertexts(old) == [None]
    assert ciphertexts(fresh) != [None] and ciphertexts(still_open) != [None]
    assert db_session.scalars(
        select(Target.salesforce_id).where(Target.request_id == old)
    ).all() == [None]
    shredded_leaf = db_session.scalar(
        select(AuditLeaf).where(AuditLeaf.request_id == old, AuditLeaf.kind == "subject.shredded")
    )
    assert shredded_leaf is not None
    # The pseudonym still answers "was this number erased?".
    lookup = client.post(
        "/v1/subject-lookups", json={"subject": {"phone": "+14155550111"}}, headers=officer_headers
    ).get_json()
    assert [match["id"] for match in lookup["requests"]] == [old]
    # And the certificate still verifies.
    checkpoint_now(db_session, signing_key)
    certificate = client.get(f"/v1/erasure-requests/{old}/certificate", headers=officer_headers)
    assert certificate.status_code == 200, certificate.get_json()
    assert verify_certificate(certificate.get_data(), signing_key.verifier()).ok
