"""A cancel reason is free text and may name the subject: it is sealed like notes (bound to its
row, shredded at retention), the outcome is a fixed phrase, and the reason is read back only by the
roles that may read notes, and only where a request is read one at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from erasure import retention
from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, RequestStatus
from erasure.identifiers import Sealed
from erasure.workflow import Protection
from tests.support.web import KeyMaker

REASON = "subject canary@example.com +14155550123 withdrew"
NOTES = "called from +14155550199, wants a letter"
NEEDLES = ("canary@example.com", "4155550123", "withdrew", "4155550199", "wants a letter")


def _headers(make_key: KeyMaker, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(role)}"}


def _clean(text_: str) -> bool:
    return not any(needle in text_ for needle in NEEDLES)


def _cancelled(client: FlaskClient, headers: dict[str, str]) -> tuple[str, str]:
    body = {"subject": {"phone": "+14155552671"}, "regulation": "gdpr", "notes": NOTES}
    request_id = client.post("/v1/erasure-requests", json=body, headers=headers).get_json()["id"]
    response = client.post(
        f"/v1/erasure-requests/{request_id}/cancel", json={"reason": REASON}, headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return request_id, response.get_data(as_text=True)


def test_a_cancel_reason_is_sealed_and_the_outcome_is_a_fixed_phrase(
    client: FlaskClient, org: Org, make_key: KeyMaker, db_session: Session, protection: Protection
) -> None:
    request_id, answer = _cancelled(client, _headers(make_key, Role.OFFICER))
    assert _clean(answer)
    row = db_session.get(ErasureRequest, uuid.UUID(request_id))
    assert row is not None and row.status is RequestStatus.CANCELLED
    assert row.outcome == "cancelled"
    stored = db_session.execute(
        text("SELECT row_to_json(r)::text FROM erasure_requests r WHERE id = :id"),
        {"id": request_id},
    ).scalar_one()
    assert _clean(stored)
    assert row.cancel_reason_ciphertext is not None and row.cancel_reason_key_id is not None
    sealed = Sealed(row.cancel_reason_key_id, row.cancel_reason_ciphertext)
    assert protection.vault.open(sealed, context=f"cancel-reason:{request_id}") == REASON
    with pytest.raises(InvalidTag):  # bound to its row: it does not open as another row's
        protection.vault.open(sealed, context=f"cancel-reason:{uuid.uuid4()}")
    leaves = db_session.scalars(
        select(AuditLeaf.leaf).where(AuditLeaf.request_id == uuid.UUID(request_id))
    ).all()
    assert leaves and all(_clean(leaf.decode()) for leaf in leaves)


def test_only_roles_that_may_read_notes_read_the_reason(
    client: FlaskClient, org: Org, make_key: KeyMaker
) -> None:
    integration = _headers(make_key, Role.INTEGRATION)
    request_id, answer = _cancelled(client, integration)
    assert _clean(answer)  # the canceller may not read notes: its own reason is not echoed
    for role in (Role.INTEGRATION, Role.AUDITOR, Role.APPROVER):
        headers = integration if role is Role.INTEGRATION else _headers(make_key, role)
        response = client.get(f"/v1/erasure-requests/{request_id}", headers=headers)
        assert response.status_code == 200
        assert _clean(response.get_data(as_text=True)), role
        assert response.get_json()["cancel_reason"] is None
        assert response.get_json()["notes"] is None
    for role in (Role.OFFICER, Role.ADMIN):
        headers = _headers(make_key, role)
        one = client.get(f"/v1/erasure-requests/{request_id}", headers=headers).get_json()
        assert one["cancel_reason"] == REASON and one["notes"] == NOTES
        assert one["outcome"] == "cancelled"
        # Lists, and answers that may be stored (idempotent replays), never carry it.
        listed = client.get("/v1/erasure-requests", headers=headers)
        assert _clean(listed.get_data(as_text=True))


def test_retention_shreds_the_cancel_reason_and_any_reason_left_in_an_old_outcome(
    client: FlaskClient, org: Org, make_key: KeyMaker, db_session: Session
) -> None:
    officer = _headers(make_key, Role.OFFICER)
    request_id, _ = _cancelled(client, officer)
    # A request cancelled before reasons were sealed kept its reason in the outcome.
    legacy_id, _ = _cancelled(client, officer)
    legacy = db_session.get(ErasureRequest, uuid.UUID(legacy_id))
    assert legacy is not None
    legacy.cancel_reason_ciphertext = legacy.cancel_reason_key_id = None
    legacy.outcome = (
        f"cancelled: {REASON}; 1 deletion(s) already sent to Salesforce could not be stopped"
    )
    db_session.flush()
    later = datetime.now(UTC) + timedelta(days=400)
    assert retention.shred_expired(db_session, retention=timedelta(days=90), now=later) >= 2
    for rid in (request_id, legacy_id):
        row = db_session.get(ErasureRequest, uuid.UUID(rid))
        assert row is not None
        db_session.refresh(row)
        assert row.cancel_reason_ciphertext is None and row.cancel_reason_key_id is None
        assert row.notes_ciphertext is None
        assert row.outcome is not None and _clean(row.outcome)
    assert legacy.outcome == (
        "cancelled; 1 deletion(s) already sent to Salesforce could not be stopped"
    )
