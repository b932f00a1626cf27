"""The value types settings are made of: the run mode, SMTP transport security, and how a key is
given (base64 of 32 bytes). Kept apart so `erasure.config` holds only the settings themselves."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum


class Mode(StrEnum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"


def decode_key(text: str, *, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} must be base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{what} must decode to 32 bytes, got {len(raw)}")
    return raw


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"
