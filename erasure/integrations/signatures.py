"""Verifying inbound webhooks (Jira, Zendesk, ServiceNow shared secret, Standard Webhooks) and
signing outbound ones (Standard Webhooks v1).

Every comparison is constant-time; every signed timestamp must be within five minutes of now.
Rejection reasons name what was wrong, never a value received. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from erasure.integrations.models import WebhookScheme

TOLERANCE_S = 300
WHSEC_PREFIX = "whsec_"

# Header names, as each system sends them.
JIRA_SIGNATURE = "X-Hub-Signature"
JIRA_DELIVERY = "X-Atlassian-Webhook-Identifier"
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_DELIVERY = "X-Zendesk-Webhook-Invocation-Id"
SW_ID = "webhook-id"
SW_TIMESTAMP = "webhook-timestamp"
SW_SIGNATURE = "webhook-signature"
SHARED_SECRET_HEADER = "X-Erasure-Webhook-Secret"  # noqa: S105  # a header name, not a secret
SHARED_DELIVERY = "X-Erasure-Delivery-Id"


class Headers(Protocol):
    def get(self, key: str, /) -> str | None: ...


class SignatureRejected(Exception):
    """The delivery is not authentic (or not fresh). `reason` is safe to log and to answer with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    delivery_id: str
    digest: bytes  # SHA-256 of what was signed: the same signed content has the same digest


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _require(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureRejected(f"missing header {name}")
    return value


def _check_fresh(moment: datetime, now: datetime) -> None:
    if abs((now - moment).total_seconds()) > TOLERANCE_S:
        raise SignatureRejected("timestamp outside the 5-minute tolerance")


def _any_equal(expected: Sequence[bytes], presented: Sequence[bytes]) -> bool:
    # Every pair is compared (no early exit on the secret that matched), in constant time each.
    matched = False
    for mine in expected:
        for theirs in presented:
            matched |= hmac.compare_digest(mine, theirs)
    return matched


def whsec_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64)."""
    raw = secret.removeprefix(WHSEC_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def new_whsec() -> str:
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_standard(*, key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (one v1 signature) for a body."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(_hmac(key, signed)).decode()


def standard_headers(
    *, keys: Sequence[bytes], msg_id: str, body: bytes, now: datetime
) -> dict[str, str]:
    """Headers of an outbound Standard Webhooks message, one signature per key (rotation)."""
    timestamp = math.floor(now.timestamp())
    return {
        SW_ID: msg_id,
        SW_TIMESTAMP: str(timestamp),
        SW_SIGNATURE: " ".join(
            sign_standard(key=key, msg_id=msg_id, timestamp=timestamp, body=body) for key in keys
        ),
    }


def _verify_standard(
    headers: Headers, body: bytes, keys: Sequence[bytes], now: datetime
) -> Verified:
    msg_id = _require(headers, SW_ID)
    raw_timestamp = _require(headers, SW_TIMESTAMP)
    signature_header = _require(headers, SW_SIGNATURE)
    if not raw_timestamp.isdigit() or len(raw_timestamp) > 12:
        raise SignatureRejected("webhook-timestamp is not whole seconds since the epoch")
    timestamp = int(raw_timestamp)
    _check_fresh(datetime.fromtimestamp(timestamp, UTC), now)
    presented: list[bytes] = []
    for versioned in signature_header.split(" "):
        version, _, value = versioned.partition(",")
        if version != "v1":
            continue  # other schemes (v1a...) may sit next to ours
        try:
            presented.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    signed = f"{msg_id}.{timestamp}.".encode() + body
    if not _any_equal([_hmac(key, signed) for key in keys], presented):
        raise SignatureRejected("signature does not match")
    return Verified(msg_id, hashlib.sha256(signed).digest())


def _verify_jira(headers: Headers, body: bytes, keys: Sequence[bytes], now: datetime) -> Verified:
    delivery = _require(headers, JIRA_DELIVERY)
    header = _require(headers, JIRA_SIGNATURE)
    method, _, hex_signature = header.partition("=")
    if method != "sha256":
        raise SignatureRejected(f"{JIRA_SIGNATURE} is not sha256=<hex>")
    try:
        presented = bytes.fromhex(hex_signature)
    except ValueError:
        raise SignatureRejected(f"{JIRA_SIGNATURE} is not sha256=<hex>") from None
    if not _any_equal([_hmac(key, body) for key in keys], [presented]):
        raise SignatureRejected("signature does not match")
    # Jira signs no timestamp header; the body's `timestamp` (ms since the epoch) is signed.
    try:
        document = json.loads(body)
        moment = datetime.fromtimestamp(int(document["timestamp"]) / 1000, UTC)
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        raise SignatureRejected("the signed body carries no `timestamp`") from None
    _check_fresh(moment, now)
    return Verified(delivery, hashlib.sha256(body).digest())


def _verify_zendesk(
    headers: Headers, body: bytes, keys: Sequence[bytes], now: datetime
) -> Verified:
    delivery = _require(headers, ZENDESK_DELIVERY)
    signature = _require(headers, ZENDESK_SIGNATURE)
    raw_timestamp = _require(headers, ZENDESK_TIMESTAMP)
    try:
        moment = datetime.fromisoformat(raw_timestamp.replace("Z", "+00:00"))
        presented = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureRejected("malformed signature or timestamp header") from None
    if moment.tzinfo is None:
        raise SignatureRejected("the timestamp has no time zone")
    signed = raw_timestamp.encode() + body
    if not _any_equal([_hmac(key, signed) for key in keys], [presented]):
        raise SignatureRejected("signature does not match")
    _check_fresh(moment, now)
    return Verified(delivery, hashlib.sha256(signed).digest())


def _verify_shared(headers: Headers, body: bytes, hashes: Sequence[bytes]) -> Verified:
    presented = hashlib.sha256(_require(headers, SHARED_SECRET_HEADER).encode()).digest()
    if not _any_equal(hashes, [presented]):
        raise SignatureRejected("shared secret does not match")
    digest = hashlib.sha256(body).digest()
    return Verified(headers.get(SHARED_DELIVERY) or digest.hex(), digest)


def verify(
    scheme: WebhookScheme,
    *,
    headers: Headers,
    body: bytes,
    keys: Sequence[bytes],
    now: datetime | None = None,
) -> Verified:
    """Check one delivery against every currently valid secret of its source.

    `keys` are HMAC keys (Standard Webhooks: already decoded from `whsec_`), or for the shared
    secret scheme the SHA-256 hashes of the secrets. Raises SignatureRejected.
    """
    now = now or datetime.now(UTC)
    if not keys:
        raise SignatureRejected("the source has no valid secret")
    match scheme:
        case WebhookScheme.STANDARD_WEBHOOKS:
            return _verify_standard(headers, body, keys, now)
        case WebhookScheme.JIRA:
            return _verify_jira(headers, body, keys, now)
        case WebhookScheme.ZENDESK:
            return _verify_zendesk(headers, body, keys, now)
        case WebhookScheme.SHARED_SECRET:
            return _verify_shared(headers, body, keys)
