"""The sandbox's External Client Apps and the tokens it issues: JWT-shaped, HS256, revocable.

Token endpoint errors follow what Salesforce is reported to answer (docs/salesforce.md section 4);
which one a misconfiguration produces is partly inferred, and each is chosen so `salesforce check`
can tell bad secret, flow not enabled and no Run As user apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AppConfig:
    """One External Client App and its Run As (execution) user."""

    client_id: str
    client_secret: str = field(repr=False)
    run_as_user_id: str | None = None
    client_credentials_enabled: bool = True
    scopes: tuple[str, ...] = ("sfap_api", "api")
    #: "Issue JSON Web Token (JWT)-based access tokens for named users".
    jwt_tokens: bool = True
    token_timeout_s: float = 30 * 60.0


@dataclass(frozen=True)
class Claims:
    client_id: str
    user_id: str
    scopes: frozenset[str]
    is_jwt: bool


class TokenProblemError(Exception):
    """Why a bearer token was refused: `missing`, `malformed`, `expired` or `revoked`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenEndpointError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Issues and checks tokens. Not thread-safe by itself: the org calls it under its lock."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self._key = secrets.token_bytes(32)
        self._issued: dict[str, set[str]] = {}  # client_id -> live jtis
        self._revoked: set[str] = set()
        self._opaque: dict[str, tuple[Claims, float, str]] = {}  # token -> claims, expiry, jti

    def issue(self, app: AppConfig, *, now: float, base_url: str) -> dict[str, Any]:
        if not app.client_credentials_enabled:
            raise TokenEndpointError("unsupported_grant_type", "grant type not supported")
        if app.run_as_user_id is None:
            raise TokenEndpointError("invalid_grant", "no client credentials user enabled")
        jti = secrets.token_hex(12)
        self._issued.setdefault(app.client_id, set()).add(jti)
        claims = Claims(app.client_id, app.run_as_user_id, frozenset(app.scopes), app.jwt_tokens)
        if app.jwt_tokens:
            payload = {
                "iss": base_url,
                "sub": app.run_as_user_id,
                "aud": "api",
                "client_id": app.client_id,
                "scp": list(app.scopes),
                "org": self.org_id,
                "iat": int(now),
                "exp": int(now + app.token_timeout_s),
                "jti": jti,
            }
            head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}).encode())
            body = _b64(json.dumps(payload, separators=(",", ":")).encode())
            sig = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
            access_token = f"{head}.{body}.{sig}"
        else:
            # The classic opaque session id shape: "<org id>!<random>".
            access_token = f"{self.org_id}!{secrets.token_urlsafe(48)}"
            self._opaque[access_token] = (claims, now + app.token_timeout_s, jti)
        response: dict[str, Any] = {
            "access_token": access_token,
            "signature": _b64(hashlib.sha256(access_token.encode()).digest()),
            "scope": " ".join(app.scopes),
            "instance_url": base_url,
            "id": f"{base_url}/id/{self.org_id}/{app.run_as_user_id}",
            "token_type": "Bearer",
            "issued_at": str(int(now * 1000)),
            # Included whatever the scopes: a token without sfap_api then fails with 401 on the
            # engagement API, which is the behaviour the client must survive.
            "api_instance_url": base_url,
        }
        if app.jwt_tokens:
            response["token_format"] = "jwt"  # noqa: S105 -- a format name, not a secret
        return response

    def check(self, authorization: str | None, *, now: float) -> Claims:
        """The claims of a valid bearer token; raises TokenProblemError otherwise."""
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenProblemError("missing")
        token = authorization.removeprefix("Bearer ").strip()
        if token in self._opaque:
            claims, expires_at, jti = self._opaque[token]
            if jti in self._revoked:
                raise TokenProblemError("revoked")
            if now >= expires_at:
                raise TokenProblemError("expired")
            return claims
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenProblemError("malformed")
        expected = _b64(
            hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, parts[2]):
            raise TokenProblemError("malformed")
        payload = json.loads(_unb64(parts[1]))
        if payload["jti"] in self._revoked:
            raise TokenProblemError("revoked")
        if now >= payload["exp"]:
            raise TokenProblemError("expired")
        return Claims(payload["client_id"], payload["sub"], frozenset(payload["scp"]), True)

    def revoke(self, client_id: str) -> int:
        """Revoke every token issued so far to `client_id`; returns how many."""
        live = self._issued.pop(client_id, set())
        self._revoked |= live
        return len(live)
