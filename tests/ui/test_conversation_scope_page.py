"""The console's request page says what a request erases: the subject, or conversations only (the
end users kept), and which: every conversation of the subject, or the listed ones by pseudonym,
each listed id left alone at resolve (another subject's, or no such record) with why. Never a
raw conversation id. And the form keeps the scope chosen when it comes back with an error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit import leaves
from erasure.core.models import Org
from erasure.pipeline.states import record_pseudonym
from erasure.workflow import Protection
from tests.support.console import SignedIn

PHONE = "+14155557301"
MINE = "0dw5g00000AbCdE"
THEIRS = "0dw5g00000ZzZzZ"


def _submit(client, token: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr", **fields},
    )


def test_the_page_says_conversations_only_and_names_listed_ids_by_pseudonym(
    signed_in: SignedIn, org: Org, db_session: Session, protection: Protection
) -> None:
    pseudonym_key = protection.pseudonym_key
    client, token = signed_in(Role.OFFICER)
    made = _submit(client, token, scope="conversations", conversations=f"{MINE} {THEIRS}")
    assert made.status_code == 302, made.get_data(as_text=True)
    request_id = uuid.UUID(made.headers["Location"].rsplit("/", 1)[-1])
    # What resolve records when a listed id is not the subject's (erasure.pipeline.resolve).
    leaves.append(
        db_session,
        kind="request.resolved",
        request_id=request_id,
        at=datetime.now(UTC),
        data={
            "records_found": 0,
            "targets": [],
            "left_alone": [
                {"record": record_pseudonym(pseudonym_key, THEIRS), "why": "not_the_subjects"}
            ],
        },
    )
    db_session.commit()
    html = client.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert 'id="scope"' in html
    assert "Conversations only" in html and "the 2 listed" in html
    assert 'id="listed-conversations"' in html
    assert html.count('class="listed-conversation mono"') == 2
    assert 'id="left-alone"' in html and "another subject" in html
    assert record_pseudonym(pseudonym_key, THEIRS)[:16] in html
    for raw in (MINE, THEIRS, MINE[:12], THEIRS[:12]):
        assert raw not in html


def test_every_conversation_and_the_subject_scope_are_worded(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.OFFICER)
    every = _submit(client, token, scope="conversations")
    html = client.get(every.headers["Location"]).get_data(as_text=True)
    assert "Conversations only" in html and "every conversation of the subject" in html
    assert 'id="listed-conversations"' not in html
    subject = _submit(client, token)
    html = client.get(subject.headers["Location"]).get_data(as_text=True)
    assert "The subject" in html and "Messaging end users" in html


def test_the_form_keeps_the_scope_chosen_after_an_error(signed_in: SignedIn, org: Org) -> None:
    client, token = signed_in(Role.OFFICER)
    refused = _submit(client, token, scope="conversations", conversations="0PA5g00000ZyXwV")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert '<option value="conversations" selected>' in html
    assert "0PA5g00000ZyXwV" not in html  # ids are identifiers: never refilled
