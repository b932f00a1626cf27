"""A Standard Webhooks delivery erases conversations only: listed ids (sealed, never echoed), or
every conversation of the subject with `data.scope`; a wrong id ignores the ticket and names the
field, not the value."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    Source,
    SubjectIdentifier,
)
from tests.support.integrations import MakeSource
from tests.support.senders import SENDERS, dumps

EMAIL = "dana.subject@example.com"
CONVERSATION = "0dw5g00000AbCdE"


def _deliver(client: FlaskClient, make_source: MakeSource, org: Org, **data: Any) -> Any:
    source, secret = make_source(Source.STANDARD_WEBHOOKS, org=org.name)
    sender = SENDERS["standard"]
    document = sender.payload(email=EMAIL, ticket=f"T-{uuid.uuid4().hex[:8]}")
    document["data"].update(data)
    body = dumps(document)
    headers = sender.sign(body, secret=secret, at=datetime.now(UTC), delivery_id=str(uuid.uuid4()))
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return response


def test_listed_conversations_make_a_conversations_only_request(
    client: FlaskClient, db_session: Session, make_source: MakeSource, org: Org
) -> None:
    response = _deliver(client, make_source, org, conversations=[CONVERSATION])
    out = response.get_json()
    assert out["outcome"] == "created"
    assert CONVERSATION not in response.get_data(as_text=True)
    request = db_session.get(ErasureRequest, uuid.UUID(out["request_id"]))
    assert request is not None and request.scope is ErasureScope.CONVERSATIONS
    kinds = sorted(
        db_session.scalars(
            select(SubjectIdentifier.kind).where(SubjectIdentifier.request_id == request.id)
        )
    )
    assert kinds == sorted([IdentifierKind.EMAIL, IdentifierKind.CONVERSATION_ID])


def test_scope_conversations_takes_every_conversation_of_the_subject(
    client: FlaskClient, db_session: Session, make_source: MakeSource, org: Org
) -> None:
    out = _deliver(client, make_source, org, scope="conversations").get_json()
    request = db_session.get(ErasureRequest, uuid.UUID(out["request_id"]))
    assert request is not None and request.scope is ErasureScope.CONVERSATIONS
    plain = _deliver(client, make_source, org).get_json()
    request = db_session.get(ErasureRequest, uuid.UUID(plain["request_id"]))
    assert request is not None and request.scope is ErasureScope.SUBJECT


def test_a_wrong_conversation_id_or_scope_ignores_the_ticket(
    client: FlaskClient, make_source: MakeSource, org: Org
) -> None:
    wrong = "0PA5g00000ZyXwV"
    response = _deliver(client, make_source, org, conversations=[wrong])
    out = response.get_json()
    assert out["outcome"] == "ignored" and out["request_id"] is None
    assert "data.conversations" in out["reason"] and "0dw" in out["reason"]
    assert wrong not in response.get_data(as_text=True)
    out = _deliver(client, make_source, org, scope="everything").get_json()
    assert out["outcome"] == "ignored" and "data.scope" in out["reason"]
    out = _deliver(
        client, make_source, org, scope="subject", conversations=[CONVERSATION]
    ).get_json()
    assert out["outcome"] == "ignored" and "scope" in out["reason"]
