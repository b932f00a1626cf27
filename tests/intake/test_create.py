"""POST /v1/erasure-requests: what is stored, what is answered, and duplicate-subject linking."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    Org,
    RequestStatus,
    SubjectIdentifier,
)
from erasure.identifiers import Sealed, identifier_context, pseudonym
from erasure.workflow import Protection
from tests.support.web import KeyMaker

BODY = {
    "subject": {"phone": "+14155552671", "email": "Ana.Silva@example.com"},
    "regulation": "gdpr",
    "received_at": "2026-01-31T10:00:00Z",
    "reference": {
        "system": "jira",
        "id": "PRIV-1",
        "url": "https://jira.example.com/browse/PRIV-1",
    },
    "notes": "asked by phone",
}


def test_submit_answers_202_with_the_request_and_its_deadline(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    response = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received"
    assert body["org"] == org.name
    assert body["due_at"] == "2026-02-28T23:59:59.999999Z"
    assert body["reference"] == {
        "system": "jira",
        "id": "PRIV-1",
        "url": "https://jira.example.com/browse/PRIV-1",
    }
    assert body["links"]["self"] == f"https://erasure.test/v1/erasure-requests/{body['id']}"
    assert response.headers["Location"] == body["links"]["self"]
    assert body["duplicate_of"] is None
    # The subject's identifiers are never echoed back.
    assert "+14155552671" not in response.get_data(as_text=True)
    assert "ana.silva" not in response.get_data(as_text=True).lower()


def test_identifiers_are_encrypted_with_a_blind_index(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    protection: Protection,
) -> None:
    request_id = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()[
        "id"
    ]
    rows = db_session.scalars(
        select(SubjectIdentifier).where(SubjectIdentifier.request_id == request_id)
    ).all()
    by_kind = {row.kind: row for row in rows}
    assert set(by_kind) == {IdentifierKind.PHONE, IdentifierKind.EMAIL}
    email = by_kind[IdentifierKind.EMAIL]
    assert email.ciphertext is not None and email.key_id is not None
    assert b"ana.silva" not in email.ciphertext.lower()
    assert email.blind_index == pseudonym(
        protection.pseudonym_key, IdentifierKind.EMAIL, "ana.silva@example.com"
    )
    opened = protection.vault.open(
        Sealed(email.key_id, email.ciphertext),
        context=identifier_context(email.request_id, IdentifierKind.EMAIL),
    )
    assert opened == "ana.silva@example.com"
    stored = db_session.get(ErasureRequest, request_id)
    assert stored is not None and stored.notes_ciphertext is not None
    assert b"asked by phone" not in stored.notes_ciphertext


def test_submission_appends_one_audit_leaf_with_pseudonyms_only(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    protection: Protection,
) -> None:
    request_id = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()[
        "id"
    ]
    leaves = db_session.scalars(select(AuditLeaf).where(AuditLeaf.request_id == request_id)).all()
    assert [leaf.kind for leaf in leaves] == ["request.received"]
    document = json.loads(leaves[0].leaf)
    assert document["data"]["regulation"] == "gdpr"
    expected = pseudonym(protection.pseudonym_key, IdentifierKind.PHONE, "+14155552671").hex()
    assert {"kind": "phone", "pseudonym": expected} in document["data"]["subject"]
    assert b"4155552671" not in leaves[0].leaf and b"silva" not in leaves[0].leaf.lower()
    assert leaves[0].leaf_index is None  # queued: the sequencer gives it its position


def test_received_at_defaults_to_now(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    body = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": "+14155552671"}, "regulation": "ccpa"},
        headers=officer_headers,
    ).get_json()
    received = datetime.fromisoformat(body["received_at"])
    assert before <= received <= datetime.now(UTC)


def test_second_request_for_an_open_subject_is_linked_not_doubled(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    first = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()
    # Same person, known by their email only this time, from another ticket.
    again = {
        "subject": {"email": "ana.silva@EXAMPLE.com"},
        "regulation": "gdpr",
        "reference": {"system": "zendesk", "id": "77"},
    }
    second = client.post("/v1/erasure-requests", json=again, headers=officer_headers).get_json()
    assert second["id"] != first["id"]
    assert second["duplicate_of"] == first["id"]
    assert second["links"]["duplicate_of"] == first["links"]["self"]
    # A third one links to the original, not to the linked one.
    third = client.post("/v1/erasure-requests", json=again, headers=officer_headers).get_json()
    assert third["duplicate_of"] == first["id"]
    leaf = db_session.scalar(select(AuditLeaf).where(AuditLeaf.request_id == second["id"]))
    assert leaf is not None and json.loads(leaf.leaf)["data"]["duplicate_of"] == first["id"]


def test_linking_follows_shared_identifiers_to_the_first_request(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    """Email only, then email and phone (linked to the first), then phone only: the third shares
    nothing with the first, but joins its group through the second."""

    def post(subject: dict[str, str]) -> dict[str, object]:
        body = {"subject": subject, "regulation": "gdpr"}
        response = client.post("/v1/erasure-requests", json=body, headers=officer_headers)
        assert response.status_code == 202
        answer = response.get_json()
        assert isinstance(answer, dict)
        return answer

    first = post({"email": "ana.silva@example.com"})
    second = post({"email": "ana.silva@example.com", "phone": "+14155552671"})
    third = post({"phone": "+14155552671"})
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]


def test_a_cancelled_request_does_not_capture_new_ones(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    first = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()
    client.post(
        f"/v1/erasure-requests/{first['id']}/cancel",
        json={"reason": "duplicate ticket"},
        headers=officer_headers,
    )
    second = client.post("/v1/erasure-requests", json=BODY, headers=officer_headers).get_json()
    assert second["duplicate_of"] is None


def test_org_is_chosen_by_name_when_several_exist(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    from erasure.orgs import add_org

    add_org(db_session, name=org.name + "-eu", my_domain_url="https://eu.my.salesforce.com")
    unnamed = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": "+14155552671"}, "regulation": "gdpr"},
        headers=officer_headers,
    )
    assert unnamed.status_code == 422
    assert unnamed.get_json()["errors"][0]["field"] == "org"
    named = client.post(
        "/v1/erasure-requests",
        json={"subject": {"phone": "+14155552671"}, "regulation": "gdpr", "org": org.name + "-eu"},
        headers=officer_headers,
    )
    assert named.status_code == 202 and named.get_json()["org"] == org.name + "-eu"


def test_a_link_is_shown_only_to_keys_that_may_see_the_linked_request(
    client: FlaskClient, org: Org, make_key: KeyMaker, db_session: Session
) -> None:
    first_system = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    other_system = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    officer = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
    theirs = client.post("/v1/erasure-requests", json=BODY, headers=first_system).get_json()
    # Another integration submits the same subject: its request is linked, but it must not learn
    # the id of a request it cannot read (nor, through it, that someone else asked first).
    created = client.post("/v1/erasure-requests", json=BODY, headers=other_system)
    assert created.status_code == 202
    mine = created.get_json()
    assert theirs["id"] not in created.get_data(as_text=True)
    assert mine["duplicate_of"] is None and mine["links"]["duplicate_of"] is None
    for response in (
        client.get(f"/v1/erasure-requests/{mine['id']}", headers=other_system),
        client.get("/v1/erasure-requests", headers=other_system),
    ):
        assert response.status_code == 200
        assert theirs["id"] not in response.get_data(as_text=True)
    # Keys that may read the linked request see the link.
    assert (
        client.get(f"/v1/erasure-requests/{mine['id']}", headers=officer).get_json()["duplicate_of"]
        == theirs["id"]
    )
    again = client.post("/v1/erasure-requests", json=BODY, headers=first_system).get_json()
    assert again["duplicate_of"] == theirs["id"]
    # When the primary completes, nothing about the linked request names it either (each
    # request of a group is carried out on its own; none copies another's outcome).
    primary = db_session.get(ErasureRequest, uuid.UUID(theirs["id"]))
    assert primary is not None
    primary.status, primary.outcome = RequestStatus.COMPLETED, "1 Salesforce record(s) deleted"
    db_session.commit()
    done = client.get(f"/v1/erasure-requests/{mine['id']}", headers=other_system)
    assert done.status_code == 200
    assert theirs["id"] not in done.get_data(as_text=True)
