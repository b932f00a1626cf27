"""Expiring download links for access exports: a token carrying the request id, the expiry and
an HMAC over both. The key is derived from the pseudonym key for this one purpose, so no new
secret needs distributing, and a link cannot be forged, extended or moved to another export."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from datetime import UTC, datetime

_PURPOSE = b"erasure access export link v1"
_MAC_BYTES = 32


class BadLink(ValueError):
    """The token is malformed, forged or expired (one answer for all: no oracle)."""


def _key(pseudonym_key: bytes) -> bytes:
    return hmac.new(pseudonym_key, _PURPOSE, hashlib.sha256).digest()


def mint(pseudonym_key: bytes, request_id: uuid.UUID, expires_at: datetime) -> str:
    body = request_id.bytes + struct.pack(">q", int(expires_at.timestamp()))
    mac = hmac.new(_key(pseudonym_key), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def check(pseudonym_key: bytes, token: str, *, now: datetime | None = None) -> uuid.UUID:
    """The request id a valid, unexpired token names; BadLink otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise BadLink("bad link") from exc
    if len(raw) != 16 + 8 + _MAC_BYTES:
        raise BadLink("bad link")
    body, mac = raw[:24], raw[24:]
    if not hmac.compare_digest(mac, hmac.new(_key(pseudonym_key), body, hashlib.sha256).digest()):
        raise BadLink("bad link")
    (expires,) = struct.unpack(">q", body[16:])
    if (now or datetime.now(UTC)).timestamp() >= expires:
        raise BadLink("bad link")
    return uuid.UUID(bytes=body[:16])
