"""SSRF: the guard judges an IPv6 address that carries an IPv4 one (IPv4-mapped, IPv4-compatible,
IPv4-translated, NAT64, 6to4) by that IPv4 address, and a ticket comment-back `base_url` is held to
the callback rules when its source is created, not only at delivery."""

from __future__ import annotations

import ipaddress

import pytest
from flask.testing import FlaskClient

from erasure.accounts.models import Role
from erasure.integrations import callbacks
from erasure.integrations.transport import AddressGuard
from tests.support.web import AppMaker, KeyMaker

LOOPBACK = ("127.0.0.0/8", "::1/128")

# (address, permitted by default, permitted when ERASURE_CALLBACK_ALLOWED_NETWORKS has loopback)
VARIANTS = [
    # IPv4-mapped ::ffff:0:0/96
    ("::ffff:127.0.0.1", False, True),
    ("::ffff:169.254.169.254", False, False),
    ("::ffff:100.100.100.200", False, False),
    ("::ffff:10.0.0.1", False, False),
    ("::ffff:93.184.216.34", True, True),
    # IPv4-compatible ::/96 (deprecated, still routed by some stacks)
    ("::127.0.0.1", False, True),
    ("::7f00:1", False, True),
    ("::169.254.169.254", False, False),
    ("::10.0.0.1", False, False),
    ("::93.184.216.34", True, True),
    # IPv4-translated ::ffff:0:0:0/96 (RFC 2765)
    ("::ffff:0:127.0.0.1", False, True),
    ("::ffff:0:a9fe:a9fe", False, False),
    # NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the gateway connects to the IPv4 address
    ("64:ff9b::7f00:1", False, True),
    ("64:ff9b::127.0.0.1", False, True),
    ("64:ff9b::a9fe:a9fe", False, False),
    ("64:ff9b::10.0.0.1", False, False),
    ("64:ff9b::c0a8:1", False, False),
    ("64:ff9b::5db8:d822", True, True),
    # NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215): the embedding depends on the operator's
    # prefix length, so nothing is known about the destination: refused
    ("64:ff9b:1::7f00:1", False, False),
    ("64:ff9b:1::5db8:d822", False, False),
    # 6to4 2002::/16 (RFC 3056): the IPv4 address of the relay's far end
    ("2002:7f00:1::", False, True),
    ("2002:a9fe:a9fe::1", False, False),
    ("2002:a00:1::1", False, False),
    ("2002:5db8:d822::1", True, True),
    # The plain forms, for reference
    ("127.0.0.1", False, True),
    ("::1", False, True),
    ("::", False, False),
    ("0.0.0.0", False, False),  # noqa: S104  # an address under test, not a bind
    ("169.254.169.254", False, False),
    ("fd00:ec2::254", False, False),
    ("93.184.216.34", True, True),
    ("2606:4700::1111", True, True),
]


@pytest.mark.parametrize(("address", "by_default", "with_loopback"), VARIANTS)
def test_the_guard_judges_embedded_ipv4_by_the_ipv4_address(
    address: str, by_default: bool, with_loopback: bool
) -> None:
    assert AddressGuard().permits(address) is by_default
    assert AddressGuard().permits(ipaddress.ip_address(address)) is by_default
    assert AddressGuard.allowing(LOOPBACK).permits(address) is with_loopback


@pytest.mark.parametrize(
    "url",
    ["https://[::127.0.0.1]/hooks", "https://[64:ff9b::7f00:1]/", "https://[2002:a9fe:a9fe::]/"],
)
def test_embedded_loopback_and_metadata_urls_are_refused_at_subscription(url: str) -> None:
    with pytest.raises(callbacks.InvalidCallbackUrl):
        callbacks.check_url(url, guard=AddressGuard())


def _source(name: str, base_url: str) -> dict[str, object]:
    return {
        "name": name,
        "system": "jira",
        "comment_back": {"base_url": base_url, "user": "bot@example.com", "token": "t0ken"},
    }


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1",
        "http://127.0.0.1:8080/jira",
        "https://127.0.0.1",
        "https://169.254.169.254",
        "https://[fd00:ec2::254]",
        "http://vm",
        "https://10.1.2.3",
        "https://[::127.0.0.1]",
        "https://[64:ff9b::7f00:1]",
        "https://user:pass@93.184.216.34",
        "ftp://93.184.216.34",
    ],
)
def test_a_comment_back_url_is_refused_at_source_creation(
    client: FlaskClient, make_key: KeyMaker, base_url: str
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    response = client.post(
        "/v1/webhook-sources", json=_source("jira-ssrf", base_url), headers=headers
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    errors = response.get_json()["errors"]
    assert [e["field"] for e in errors] == ["comment_back.base_url"], errors
    assert client.get("/v1/webhook-sources", headers=headers).get_json()["items"] == []


def test_a_public_or_allowed_comment_back_url_is_accepted(
    client: FlaskClient, make_app: AppMaker, make_key: KeyMaker
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    public = client.post(
        "/v1/webhook-sources", json=_source("jira-public", "https://93.184.216.34"), headers=headers
    )
    assert public.status_code == 201, public.get_data(as_text=True)
    on_premise = make_app(callback_allowed_networks=("10.20.0.0/16",)).test_client()
    allowed = on_premise.post(
        "/v1/webhook-sources",
        json=_source("jira-onprem", "https://10.20.1.1/jira"),
        headers=headers,
    )
    assert allowed.status_code == 201, allowed.get_data(as_text=True)
