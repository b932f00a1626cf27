"""OpenDSR erasures of conversations only, through the spec's `extensions` object keyed by the
processor's domain: `{"scope": "conversations", "conversations": [...]}`, validated like the
intake API (a 400 error object naming the field, never the value, creating nothing); members of
ours we do not know, and another processor's extension, are ignored (OpenDSR §7.1.2); the scope and ids are part of what a retry
must repeat."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    SubjectIdentifier,
)
from tests.support.web import KeyMaker

EMAIL = "opendsr.conversations.canary@example.com"
ONE = "0dwXX0000000001AAA"
TWO = "0dwXX0000000002AAA"


def _body(srid: str, extensions: dict[str, Any] | None, kind: str = "erasure") -> dict[str, Any]:
    body: dict[str, Any] = {
        "api_version": "2.0",
        "regulation": "gdpr",
        "subject_request_id": srid,
        "subject_request_type": kind,
        "subject_identities": [
            {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
        ],
    }
    if extensions is not None:
        body["extensions"] = extensions
    return body


def _domain(client: FlaskClient) -> str:
    certificate = client.get("/opendsr/v2/discovery").get_json()["processor_certificate"]
    return str(urlsplit(certificate).hostname)


def _made(session: Session, srid: str) -> ErasureRequest | None:
    return session.scalar(select(ErasureRequest).where(ErasureRequest.reference_id == srid))


def test_an_extension_erases_the_listed_conversations_only(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    domain = _domain(client)
    srid = str(uuid.uuid4())
    ours = {domain: {"scope": "conversations", "conversations": [ONE, TWO]}}
    created = client.post("/opendsr/v2/requests", json=_body(srid, ours), headers=headers)
    assert created.status_code == 201, created.get_json()
    made = _made(db_session, srid)
    assert made is not None and made.scope is ErasureScope.CONVERSATIONS
    listed = db_session.scalar(
        select(func.count())
        .select_from(SubjectIdentifier)
        .where(
            SubjectIdentifier.request_id == made.id,
            SubjectIdentifier.kind == IdentifierKind.CONVERSATION_ID,
        )
    )
    assert listed == 2

    retry = client.post("/opendsr/v2/requests", json=_body(srid, ours), headers=headers)
    assert retry.status_code == 200
    narrower = {domain: {"conversations": [ONE]}}
    conflict = client.post("/opendsr/v2/requests", json=_body(srid, narrower), headers=headers)
    assert conflict.status_code == 400
    assert conflict.get_json()["error"]["errors"][0]["reason"] == "subject_request_conflict"
    whole = client.post("/opendsr/v2/requests", json=_body(srid, None), headers=headers)
    assert whole.status_code == 400  # the subject is not the same erasure as its conversations

    every = str(uuid.uuid4())
    all_of_them = {domain: {"scope": "conversations"}}
    assert (
        client.post("/opendsr/v2/requests", json=_body(every, all_of_them), headers=headers)
    ).status_code == 201
    made_all = _made(db_session, every)
    assert made_all is not None and made_all.scope is ErasureScope.CONVERSATIONS


def test_another_processors_extension_and_members_we_do_not_know_are_ignored(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    srid = str(uuid.uuid4())
    theirs = {
        "other-processor.example": {"scope": "conversations", "anything": [1, 2]},
        _domain(client): {"note": "a controller's own member"},
    }
    created = client.post("/opendsr/v2/requests", json=_body(srid, theirs), headers=headers)
    assert created.status_code == 201, created.get_json()
    made = _made(db_session, srid)
    assert made is not None and made.scope is ErasureScope.SUBJECT


def test_a_bad_extension_is_a_400_naming_the_field_and_creates_nothing(
    client: FlaskClient, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    domain = _domain(client)
    cases = [
        (
            {domain: {"conversations": ["0dwNOTANID-canary"]}},
            f"extensions.{domain}.conversations.0",
        ),
        ({domain: {"scope": "subject", "conversations": [ONE]}}, f"extensions.{domain}"),
        ({domain: {"scope": "everything-canary"}}, f"extensions.{domain}.scope"),
        ({domain: ["conversations-canary"]}, f"extensions.{domain}"),
    ]
    for extension, location in cases:
        srid = str(uuid.uuid4())
        response = client.post("/opendsr/v2/requests", json=_body(srid, extension), headers=headers)
        assert response.status_code == 400, (extension, response.get_json())
        (error,) = response.get_json()["error"]["errors"]
        assert error["location"] == location, error
        assert "canary" not in response.get_data(as_text=True)
        assert _made(db_session, srid) is None
    srid = str(uuid.uuid4())
    access = client.post(
        "/opendsr/v2/requests",
        json=_body(srid, {domain: {"scope": "conversations"}}, kind="access"),
        headers=headers,
    )
    assert access.status_code == 400
    assert access.get_json()["error"]["errors"][0]["location"] == f"extensions.{domain}"
