"""Nothing a client sent comes back in an error: not a value, and not a key either (an identifier
sent as a JSON key, a query parameter's name or a CSV header is still an identifier). Errors name
where the fault is in a safe form: the parent path and how many unknown fields it has."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import Org, Source
from erasure.integrations import sources
from erasure.integrations.models import WebhookDelivery
from erasure.workflow import Protection
from tests.support.senders import SENDERS, dumps
from tests.support.web import KeyMaker

EMAIL = "canary.k3y@example.com"
PHONE = "+14155550123"
NEEDLES = ("canary", "k3y", "4155550123", "secretzz", "999.1.1.1", "ulqz")


def assert_no_echo(response: Any) -> None:
    text = response.get_data(as_text=True).lower()
    for needle in NEEDLES:
        assert needle not in text, (needle, text)


def test_unknown_fields_are_counted_under_their_parent_never_named(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    body = {
        "subject": {"phone": "+14155552671", f"subject.{EMAIL}": "x", PHONE: 1},
        "regulation": "gdpr",
        EMAIL: True,
    }
    response = client.post("/v1/erasure-requests", json=body, headers=officer_headers)
    assert response.status_code == 422
    assert_no_echo(response)
    errors = {e["field"]: e["detail"] for e in response.get_json()["errors"]}
    assert errors == {"(body)": "1 unknown field", "subject": "2 unknown fields"}


def test_an_unknown_query_parameter_is_not_named(
    client: FlaskClient, officer_headers: dict[str, str]
) -> None:
    response = client.get(f"/v1/erasure-requests?{quote(EMAIL)}=1", headers=officer_headers)
    assert response.status_code == 422
    assert_no_echo(response)
    assert response.get_json()["errors"] == [{"field": "(query)", "detail": "1 unknown field"}]


# email-validator's messages quote parts of the address (IDNA labels, address literals).
BAD_EMAILS = ["ana@[IPv6:secretzz]", "ana@[999.1.1.1]", "ana@ulqzsecretzz\u0660\u06f0.com"]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_an_invalid_email_is_described_without_its_parts(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], email: str
) -> None:
    body = {"subject": {"email": email}, "regulation": "gdpr"}
    response = client.post("/v1/erasure-requests", json=body, headers=officer_headers)
    assert response.status_code == 422
    assert_no_echo(response)
    assert [e["field"] for e in response.get_json()["errors"]] == ["subject.email"]


def test_opendsr_errors_do_not_echo_identities(
    client: FlaskClient, org: Org, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    body = {
        "subject_request_id": "r-1",
        "subject_request_type": "erasure",
        "subject_identities": [{"identity_type": "email", "identity_value": BAD_EMAILS[0]}],
    }
    response = client.post("/opendsr/v2/requests", json=body, headers=headers)
    assert response.status_code == 400  # OpenDSR's error object (its §7.5)
    assert response.get_json()["error"]["errors"][0]["location"] == (
        "subject_identities.0.identity_value"
    )
    assert_no_echo(response)


def test_webhook_source_mapping_errors_do_not_name_unknown_keys(
    client: FlaskClient, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    body = {"name": "jira-echo", "system": "jira", "mapping": {EMAIL: ["x"], "email": 5}}
    response = client.post("/v1/webhook-sources", json=body, headers=headers)
    assert response.status_code == 422
    assert_no_echo(response)


def test_an_ignored_ticket_is_explained_without_the_subjects_address(
    client: FlaskClient, db_session: Session, org: Org, protection: Protection
) -> None:
    source, secret = sources.create_source(
        db_session, name="jira-echo", system=Source.JIRA, vault=protection.vault, org=org.name
    )
    db_session.commit()
    sender = SENDERS["jira"]
    at = datetime.now(UTC)
    body = dumps(sender.restamp(sender.payload(email=BAD_EMAILS[0], ticket="PRIV-7"), at))
    headers = sender.sign(body, secret=secret, at=at, delivery_id="echo-1")
    response = client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)
    assert response.status_code == 202 and response.get_json()["outcome"] == "ignored"
    assert_no_echo(response)
    stored = db_session.scalars(
        select(WebhookDelivery.reason).where(WebhookDelivery.source_id == source.id)
    ).all()
    assert stored and not any("secretzz" in (reason or "") for reason in stored)
