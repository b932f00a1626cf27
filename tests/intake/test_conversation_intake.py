"""POST /v1/erasure-requests for conversations only: ids and scope validated, stored sealed,
named in the leaf by pseudonym and never echoed."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    SubjectIdentifier,
)
from erasure.identifiers import Sealed, identifier_context, pseudonym
from erasure.workflow import Protection

CONVERSATION = "0dw5g00000AbCdE"
SUBJECT = {"phone": "+14155552671"}


def _post(client: FlaskClient, headers: dict[str, str], **body: object) -> tuple[int, dict]:
    response = client.post(
        "/v1/erasure-requests",
        json={"subject": SUBJECT, "regulation": "gdpr", **body},
        headers=headers,
    )
    return response.status_code, response.get_json()


def test_listed_conversations_are_sealed_and_imply_the_conversations_scope(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    protection: Protection,
) -> None:
    status, body = _post(client, officer_headers, conversations=[CONVERSATION, CONVERSATION])
    assert status == 202, body
    assert body["scope"] == "conversations"
    assert CONVERSATION not in json.dumps(body)
    request = db_session.get(ErasureRequest, body["id"])
    assert request is not None and request.scope is ErasureScope.CONVERSATIONS
    rows = db_session.scalars(
        select(SubjectIdentifier).where(
            SubjectIdentifier.request_id == request.id,
            SubjectIdentifier.kind == IdentifierKind.CONVERSATION_ID,
        )
    ).all()
    assert len(rows) == 1  # given twice, stored once
    row = rows[0]
    assert row.ciphertext is not None and row.key_id is not None
    assert CONVERSATION.encode() not in row.ciphertext
    opened = protection.vault.open(
        Sealed(row.key_id, row.ciphertext),
        context=identifier_context(request.id, IdentifierKind.CONVERSATION_ID),
    )
    assert opened == CONVERSATION
    blind = pseudonym(protection.pseudonym_key, IdentifierKind.CONVERSATION_ID, CONVERSATION)
    assert row.blind_index == blind
    leaf = db_session.scalar(
        select(AuditLeaf).where(
            AuditLeaf.request_id == request.id, AuditLeaf.kind == "request.received"
        )
    )
    assert leaf is not None
    assert CONVERSATION.encode() not in leaf.leaf
    data = json.loads(leaf.leaf)["data"]
    assert data["scope"] == "conversations"
    assert {"kind": "conversation_id", "pseudonym": blind.hex()} in data["subject"]


def test_every_conversation_of_the_subject_is_a_scope_without_ids(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    status, body = _post(client, officer_headers, scope="conversations")
    assert status == 202, body
    assert body["scope"] == "conversations"
    kinds = db_session.scalars(
        select(SubjectIdentifier.kind).where(SubjectIdentifier.request_id == body["id"])
    ).all()
    assert kinds == [IdentifierKind.PHONE]


def test_a_plain_request_keeps_the_subject_scope(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    status, body = _post(client, officer_headers)
    assert status == 202, body
    assert body["scope"] == "subject"


def _errors(body: dict) -> dict[str, str]:
    return {error["field"]: error["detail"] for error in body["errors"]}


def test_bad_conversation_ids_are_422_naming_the_field_not_the_value(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    end_user_id = "0PA5g00000AbCdE"
    status, body = _post(client, officer_headers, conversations=[CONVERSATION, end_user_id])
    assert status == 422
    assert _errors(body) == {
        "conversations.1": "is not a record id of this type (expected prefix 0dw)"
    }
    assert end_user_id not in json.dumps(body)
    status, body = _post(client, officer_headers, conversations=["0dw-not-an-id!!"])
    assert status == 422
    assert "0dw-not-an-id" not in json.dumps(body)
    assert "conversations.0" in _errors(body)
    status, body = _post(client, officer_headers, conversations=[])
    assert status == 422
    assert "conversations" in _errors(body)


def test_conversations_with_the_subject_scope_are_422(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    status, body = _post(client, officer_headers, scope="subject", conversations=[CONVERSATION])
    assert status == 422
    detail = " ".join(_errors(body).values())
    assert "scope conversations" in detail
    status, body = _post(client, officer_headers, scope="everything")
    assert status == 422
    assert "scope" in _errors(body)
