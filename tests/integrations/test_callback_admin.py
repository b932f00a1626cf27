"""Callback subscriptions over their life: secret rotation (two signatures during the overlap,
each verifiable with the reference package, then only the new one), deletion (no more callbacks,
pending ones dead-lettered, no redelivery), and the SSRF guard at subscription and at delivery."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.config import Settings
from erasure.core.models import Org
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackSubscription
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import (
    AddressGuard,
    BlockedAddress,
    RequestsTransport,
    TransportError,
)
from erasure.workflow import Protection
from tests.support.callbacks import LINKS, drain, submit_request, subscribe
from tests.support.integrations import LOOPBACK
from tests.support.receivers import receiver
from tests.support.web import KeyMaker


@pytest.fixture
def senders(protection: Protection, processor_config: ProcessorConfig) -> callbacks.Senders:
    return callbacks.Senders(
        transport=RequestsTransport(timeout_s=(2.0, 5.0), guard=AddressGuard.allowing(LOOPBACK)),
        vault=protection.vault,
        processor=processor_config,
    )


def _headers(make_key: KeyMaker, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(role)}"}


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


@pytest.mark.usefixtures("cursor_at_end")
def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    senders: callbacks.Senders,
) -> None:
    admin = _headers(make_key, Role.ADMIN)
    with receiver() as rx:
        subscription = subscribe(client, admin, rx.url + "/hooks")
        old = subscription["secret"]
        rotated = client.post(
            f"/v1/callback-subscriptions/{subscription['id']}/secrets",
            json={"previous_valid_for_s": 3600},
            headers=admin,
        )
        assert rotated.status_code == 201, rotated.get_json()
        new = rotated.get_json()["secret"]
        assert new.startswith("whsec_") and new != old
        assert rotated.get_json()["previous_secret_expires_at"] is not None
        submit_request(client, admin)
        assert callbacks.dispatch(db_session, links=LINKS) == 1
        assert drain(db_session, senders) == 1
        during = rx.received[-1]
        assert len(during.headers["Webhook-Signature"].split()) == 2
        assert _verifies(old, during.body, during.headers)
        assert _verifies(new, during.body, during.headers)
        # After the overlap only the new secret signs.
        row = db_session.get(CallbackSubscription, uuid.UUID(subscription["id"]))
        assert row is not None
        row.previous_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        submit_request(client, admin)
        assert callbacks.dispatch(db_session, links=LINKS) == 1
        assert drain(db_session, senders) == 1
        after = rx.received[-1]
    assert len(after.headers["Webhook-Signature"].split()) == 1
    assert _verifies(new, after.body, after.headers)
    assert not _verifies(old, after.body, after.headers)


@pytest.mark.usefixtures("cursor_at_end")
def test_a_deleted_subscription_gets_nothing_more(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    make_key: KeyMaker,
    senders: callbacks.Senders,
) -> None:
    admin = _headers(make_key, Role.ADMIN)
    officer = _headers(make_key, Role.OFFICER)
    with receiver() as rx:
        subscription = subscribe(client, admin, rx.url + "/hooks")
        submit_request(client, admin)
        assert callbacks.dispatch(db_session, links=LINKS) == 1  # pending, not yet sent
        deleted = client.delete(f"/v1/callback-subscriptions/{subscription['id']}", headers=admin)
        assert deleted.status_code == 200, deleted.get_json()
        assert deleted.get_json()["is_active"] is False
        dead = client.get("/v1/callback-deliveries?status=dead", headers=officer).get_json()
        (row,) = [d for d in dead["items"] if d["last_error"] == "subscription deleted"]
        again = client.post(f"/v1/callback-deliveries/{row['id']}/redeliver", headers=officer)
        assert again.status_code == 409
        submit_request(client, admin)
        assert callbacks.dispatch(db_session, links=LINKS) == 0
        assert drain(db_session, senders) == 0
        rotate = client.post(
            f"/v1/callback-subscriptions/{subscription['id']}/secrets", json={}, headers=admin
        )
        assert rotate.status_code == 409
        # Deleting twice is harmless; an unknown id is a 404.
        assert (
            client.delete(f"/v1/callback-subscriptions/{subscription['id']}", headers=admin)
        ).status_code == 200
    assert rx.received == []
    listed = client.get("/v1/callback-subscriptions", headers=admin).get_json()["items"]
    assert [s["is_active"] for s in listed if s["id"] == subscription["id"]] == [False]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://172.16.5.5/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[fe80::1]/",
        "https://100.100.100.200/",
        "https://0.0.0.0/",
    ],
)
def test_private_addresses_are_refused_at_subscription(url: str) -> None:
    # Without an allowed network (the production default), loopback is refused too.
    with pytest.raises(callbacks.InvalidCallbackUrl):
        callbacks.check_url(url, guard=AddressGuard())


def test_the_setting_parses_networks(settings: Settings) -> None:
    parsed = Settings.model_validate(
        {**settings.model_dump(), "callback_allowed_networks": "10.20.0.0/16, 127.0.0.1"}
    )
    assert parsed.callback_allowed_networks == ("10.20.0.0/16", "127.0.0.1/32")
    with pytest.raises(ValueError, match="CIDR"):
        Settings.model_validate({**settings.model_dump(), "callback_allowed_networks": "nope"})


def test_the_api_refuses_a_metadata_url(client: FlaskClient, make_key: KeyMaker) -> None:
    response = client.post(
        "/v1/callback-subscriptions",
        json={"url": "https://169.254.169.254/latest/meta-data"},
        headers=_headers(make_key, Role.ADMIN),
    )
    assert response.status_code == 422
    assert "public address" in response.get_data(as_text=True)


def test_an_allowed_network_and_a_public_address_pass() -> None:
    on_premise = AddressGuard.allowing(["10.20.0.0/16"])
    assert callbacks.check_url("https://10.20.1.1/hooks", guard=on_premise)
    with pytest.raises(callbacks.InvalidCallbackUrl):
        callbacks.check_url("https://10.21.1.1/hooks", guard=on_premise)
    assert callbacks.check_url("https://93.184.216.34/hooks", guard=AddressGuard())
    assert AddressGuard().permits(ipaddress.ip_address("2606:4700::1111"))


def test_delivery_refuses_a_private_address_even_if_the_subscription_predates_the_guard() -> None:
    strict = RequestsTransport(timeout_s=(2.0, 2.0))
    with receiver() as rx, pytest.raises(BlockedAddress):
        strict.send("POST", rx.url + "/hooks", body=b"{}", headers={})
    assert rx.received == []


def test_the_connection_check_catches_a_name_that_resolves_late(monkeypatch: Any) -> None:
    """DNS rebinding: the pre-send check passed (the name looked public), but the socket
    connects to loopback; the guard at connect time refuses before a byte is sent."""
    strict = RequestsTransport(timeout_s=(2.0, 2.0))
    monkeypatch.setattr(AddressGuard, "check_host", lambda self, host, port: None)
    with receiver() as rx, pytest.raises(TransportError):
        strict.send("POST", rx.url + "/hooks", body=b"{}", headers={})
    assert rx.received == []
