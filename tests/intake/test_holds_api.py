"""The /v1/holds input rules through the test client: what a hold needs, refused with 422 naming
the field and never echoing the identifier; a placed hold reads back with its reason for its
approver and its subject's kind only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from erasure.accounts.models import Role
from erasure.core.models import Org
from tests.conftest import KeyMaker

PHONE = "+14155552671"
LATER = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def hold(**fields: Any) -> dict[str, Any]:
    return {
        "scope": "subject",
        "subject": {"phone": PHONE},
        "reason": "Matter 77 for Ana Example",
        "ends_at": LATER,
    } | fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (hold(ends_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat()), "ends_at"),
        (hold(ends_at="2030-01-01T00:00:00"), "ends_at"),  # no offset
        (hold(subject=None), "(body)"),
        (hold(scope="org"), "(body)"),  # an org hold names no subject
        (hold(subject={"phone": PHONE, "email": "ana@example.com"}), "subject"),
        (hold(subject={"phone": "+1415555"}), "subject.phone"),
        (hold(reason=""), "reason"),
        (hold(scope="everything"), "scope"),
    ],
)
def test_a_bad_hold_is_refused_naming_the_field(
    client: FlaskClient, org: Org, make_key: KeyMaker, body: dict[str, Any], field: str
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.APPROVER)}"}
    response = client.post("/v1/holds", json=body, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in [e["field"] for e in response.get_json()["errors"]]
    text = response.get_data(as_text=True)
    assert PHONE not in text and "+1415555" not in text and "ana@example.com" not in text


def test_a_hold_reads_back_without_its_identifier(
    client: FlaskClient, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    placed = client.post("/v1/holds", json=hold(org=org.name), headers=headers)
    assert placed.status_code == 201, placed.get_data(as_text=True)
    document = placed.get_json()
    assert document["subject_kind"] == "phone" and document["state"] == "active"
    assert document["reason"] == "Matter 77 for Ana Example"
    assert placed.headers["Location"].endswith(f"/v1/holds/{document['id']}")
    assert PHONE not in placed.get_data(as_text=True)
    one = client.get(f"/v1/holds/{document['id']}", headers=headers).get_json()
    assert one["held_requests"] == []
    active = client.get("/v1/holds?active=true", headers=headers).get_json()["items"]
    assert document["id"] in [item["id"] for item in active]
    assert client.get("/v1/holds?active=maybe", headers=headers).status_code == 422
    released = client.post(f"/v1/holds/{document['id']}/release", json={}, headers=headers)
    assert released.get_json()["state"] == "released"
    active = client.get("/v1/holds?active=true", headers=headers).get_json()["items"]
    assert document["id"] not in [item["id"] for item in active]
