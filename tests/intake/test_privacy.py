"""No subject identifier in logs, responses, error bodies, audit leaves or stored plaintext:
canary values go in through every path, and are looked for everywhere."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from erasure.core.models import Org

CANARIES = {
    "phone": "+14155559137",
    "email": "canary.q7x2@example.org",
    "messaging_platform_key": "whatsapp:canary-Z9Q4",
    "contact_id": "003CANARY000001",
}
NEEDLES = [
    "4155559137",
    "415 555 9137",
    "415-555-9137",
    "canary.q7x2",
    "canary-z9q4",
    "003canary000001",
    "secret notes zq",
]


def _assert_clean(where: str, haystack: str) -> None:
    lowered = haystack.lower()
    for needle in NEEDLES:
        assert needle.lower() not in lowered, f"{needle!r} leaked into {where}"


def test_canaries_never_leak(
    client: FlaskClient,
    org: Org,
    officer_headers: dict[str, str],
    db_session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    good = {"subject": CANARIES, "regulation": "gdpr", "notes": "secret notes ZQ"}
    first = client.post(
        "/v1/erasure-requests", json=good, headers=officer_headers | {"Idempotency-Key": "c1"}
    )
    assert first.status_code == 202
    request_id = first.get_json()["id"]
    bodies += [first.get_data(as_text=True)]
    # Replays, duplicates, reads, lists and cancels.
    for response in (
        client.post(
            "/v1/erasure-requests", json=good, headers=officer_headers | {"Idempotency-Key": "c1"}
        ),
        client.post("/v1/erasure-requests", json=good, headers=officer_headers),
        client.get("/v1/erasure-requests", headers=officer_headers),
        client.post(
            f"/v1/erasure-requests/{request_id}/cancel",
            json={"reason": "test"},
            headers=officer_headers,
        ),
    ):
        assert response.status_code < 300
        bodies.append(response.get_data(as_text=True))
    # Reading one request, an officer (who may read notes) gets the note decrypted in `notes`,
    # and nothing else of it anywhere in the answer.
    one = client.get(f"/v1/erasure-requests/{request_id}", headers=officer_headers).get_json()
    assert one["notes"] == "secret notes ZQ"
    bodies.append(json.dumps({**one, "notes": None}))
    # Every kind of rejection, each carrying a canary.
    for bad in (
        {"subject": {"phone": CANARIES["phone"] + "99"}, "regulation": "gdpr"},
        {"subject": {"email": CANARIES["email"] + "@@"}, "regulation": "gdpr"},
        {"subject": {"contact_id": CANARIES["contact_id"] + "!"}, "regulation": "gdpr"},
        {
            "subject": {"messaging_platform_key": "x" * 300 + CANARIES["messaging_platform_key"]},
            "regulation": "gdpr",
        },
        {"subject": CANARIES, "regulation": "gdpr", "unknown": CANARIES["email"]},
        {"subject": CANARIES, "regulation": CANARIES["email"]},
        {"subject": CANARIES, "regulation": "gdpr", "org": CANARIES["email"]},
        {"subject": {"phone": [CANARIES["phone"]]}, "regulation": "gdpr"},
    ):
        response = client.post(
            "/v1/erasure-requests", json=bad, headers=officer_headers | {"Idempotency-Key": "c2"}
        )
        assert 400 <= response.status_code < 500
        bodies.append(response.get_data(as_text=True))
    malformed = client.post(
        "/v1/erasure-requests",
        data='{"subject": {"email": "' + CANARIES["email"] + '"',
        headers=officer_headers | {"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    bodies.append(malformed.get_data(as_text=True))

    for n, body in enumerate(bodies):
        _assert_clean(f"response {n}", body)
    _assert_clean("logs", caplog.text)
    # Everything stored in plain form: audit leaves, idempotency records, outbox, request rows.
    dump = (
        db_session.execute(
            text(
                "SELECT coalesce(string_agg(convert_from(leaf, 'UTF8'), ' '), '') FROM audit_leaves "
                "UNION ALL SELECT coalesce(string_agg(response_body::text, ' '), '') FROM idempotency_records "
                "UNION ALL SELECT coalesce(string_agg(args::text, ' '), '') FROM outbox "
                "UNION ALL SELECT coalesce(string_agg(row_to_json(r)::text, ' '), '') FROM erasure_requests r"
            )
        )
        .scalars()
        .all()
    )
    _assert_clean("database plaintext", " ".join(dump))
    ciphertexts = (
        db_session.execute(text("SELECT encode(ciphertext, 'escape') FROM subject_identifiers"))
        .scalars()
        .all()
    )
    _assert_clean("identifier ciphertexts", " ".join(c or "" for c in ciphertexts))
