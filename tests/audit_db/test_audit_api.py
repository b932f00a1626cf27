"""Audit endpoints: checkpoint, public key, certificates of erasure, subject lookups, and no
personal data anywhere in what the audit side produces."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.audit import store
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey, VerifierKey
from erasure.core.models import Org
from tests.support.audited_requests import ORIGIN, checkpoint_now, complete, submit


def test_public_key_and_checkpoint(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    signing_key: SigningKey,
) -> None:
    key_text = client.get("/v1/audit/public-key").get_data(as_text=True).strip()
    assert VerifierKey.parse(key_text).key_id == signing_key.key_id
    submit(client, officer_headers)
    checkpoint_now(db_session, signing_key)
    assert client.get("/v1/audit/checkpoint").status_code == 401
    response = client.get("/v1/audit/checkpoint", headers=officer_headers)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith(ORIGIN + "\n")


def test_certificate_of_a_completed_request_verifies_offline(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    signing_key: SigningKey,
) -> None:
    request_id = submit(client, officer_headers)
    not_done = client.get(f"/v1/erasure-requests/{request_id}/certificate", headers=officer_headers)
    assert not_done.status_code == 409, not_done.get_json()
    assert not_done.get_json()["code"] == "invalid_transition"
    complete(db_session, request_id, org)
    too_soon = client.get(f"/v1/erasure-requests/{request_id}/certificate", headers=officer_headers)
    assert too_soon.status_code == 409, too_soon.get_json()
    assert too_soon.get_json()["code"] == "not_ready"
    assert too_soon.headers["Retry-After"] == "2"
    checkpoint_now(db_session, signing_key)
    response = client.get(f"/v1/erasure-requests/{request_id}/certificate", headers=officer_headers)
    assert response.status_code == 200
    document = json.loads(response.get_data())
    report = verify_certificate(response.get_data(), signing_key.verifier())
    assert report.ok, report.findings
    assert document["request"]["id"] == request_id and document["request"]["status"] == "completed"
    assert [leaf["leaf"]["kind"] for leaf in document["leaves"]] == [
        "request.received",
        "target.deleted",
        "request.completed",
    ]
    assert document["targets"][0]["salesforce_log_id"] == "0Xa000000000001"
    assert document["targets"][0]["read_back"] == "absent"
    # Any edit breaks it; so does another key.
    forged = response.get_data().replace(b"0Xa000000000001", b"0Xa000000000002", 1)
    assert not verify_certificate(forged, signing_key.verifier()).ok
    assert not verify_certificate(response.get_data(), SigningKey.generate("other").verifier()).ok


def test_subject_lookup_finds_requests_by_pseudonym_without_echoing_the_identifier(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    request_id = submit(client, officer_headers, "+14155550199")
    submit(client, officer_headers, "+14155550198")
    response = client.post(
        "/v1/subject-lookups",
        json={"subject": {"phone": "+1 415 555 0199"}},
        headers=officer_headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [match["id"] for match in body["requests"]] == [request_id]
    assert "4155550199" not in response.get_data(as_text=True)
    assert (
        client.post(
            "/v1/subject-lookups",
            json={"subject": {"phone": "+14155550100"}},
            headers=officer_headers,
        ).get_json()["requests"]
        == []
    )


@pytest.mark.parametrize("role", ["auditor", "integration", "approver"])
def test_only_officers_and_admins_may_look_up_subjects(
    client: FlaskClient, make_key: object, role: str
) -> None:
    from erasure.accounts.models import Role

    key = make_key(Role(role))  # type: ignore[operator]
    response = client.post(
        "/v1/subject-lookups",
        json={"subject": {"phone": "+14155550199"}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403


CANARY_PHONES = [f"+1415555{n:04d}" for n in range(7000, 7100)]


def test_canaries_in_100_requests_never_reach_leaves_checkpoints_certificates_or_logs(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    signing_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = [submit(client, officer_headers, phone) for phone in CANARY_PHONES]
    for request_id in ids[:10]:
        complete(db_session, request_id, org)
    checkpoint_now(db_session, signing_key)
    produced = [client.get("/v1/audit/checkpoint", headers=officer_headers).get_data(as_text=True)]
    produced += [
        client.get(f"/v1/erasure-requests/{rid}/certificate", headers=officer_headers).get_data(
            as_text=True
        )
        for rid in ids[:10]
    ]
    produced += [
        leaf.leaf.decode() for rid in ids for leaf in store.leaves_of_request(db_session, rid)
    ]
    produced.append(caplog.text)
    assert len(produced) == 1 + 10 + (100 + 2 * 10) + 1  # every leaf of every request was looked at
    for phone in CANARY_PHONES:
        digits = phone[2:]
        assert not any(digits in text for text in produced), f"{phone} leaked"
