"""The console's new-request form erases conversations only: every conversation of the subject, or
the ones listed, the end user kept; a wrong id is named by field, never repeated."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, ErasureScope, IdentifierKind, Org, SubjectIdentifier
from tests.support.console import SignedIn

PHONE = "+14155552671"
CONVERSATION = "0dw5g00000AbCdE"


def _submit(client, token: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr", **fields},
    )


def _kinds(db_session: Session, request_id: uuid.UUID) -> list[IdentifierKind]:
    return sorted(
        db_session.scalars(
            select(SubjectIdentifier.kind).where(SubjectIdentifier.request_id == request_id)
        )
    )


def test_the_form_offers_conversations_only(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    form = client.get("/ui/requests/new").get_data(as_text=True)
    assert 'name="scope"' in form and 'value="conversations"' in form
    assert 'name="conversations"' in form

    every = _submit(client, token, scope="conversations")
    assert every.status_code == 302, every.get_data(as_text=True)
    request_id = uuid.UUID(every.headers["Location"].rsplit("/", 1)[-1])
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None and stored.scope is ErasureScope.CONVERSATIONS
    assert _kinds(db_session, request_id) == [IdentifierKind.PHONE]

    listed = _submit(client, token, scope="conversations", conversations=f" {CONVERSATION} ")
    assert listed.status_code == 302, listed.get_data(as_text=True)
    listed_id = uuid.UUID(listed.headers["Location"].rsplit("/", 1)[-1])
    assert _kinds(db_session, listed_id) == sorted(
        [IdentifierKind.PHONE, IdentifierKind.CONVERSATION_ID]
    )

    plain = _submit(client, token)
    assert plain.status_code == 302
    plain_id = uuid.UUID(plain.headers["Location"].rsplit("/", 1)[-1])
    stored_plain = db_session.get(ErasureRequest, plain_id)
    assert stored_plain is not None and stored_plain.scope is ErasureScope.SUBJECT


def test_a_wrong_conversation_id_is_named_not_repeated(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.OFFICER)
    wrong = "0PA5g00000ZyXwV"
    refused = _submit(client, token, scope="conversations", conversations=wrong)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "conversations.0" in html and "expected prefix 0dw" in html
    assert wrong not in html
    mixed = _submit(client, token, scope="subject", conversations=CONVERSATION)
    assert mixed.status_code == 422
    assert "scope conversations" in mixed.get_data(as_text=True)
