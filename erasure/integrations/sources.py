"""Webhook sources and their secrets: create, rotate (old secrets keep verifying for an overlap),
and the keys valid now. HMAC keys are sealed with the Vault (a check needs the key back); a shared
secret is only ever compared, so only its SHA-256 is kept. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from erasure.core.models import Source
from erasure.errors import InvalidTransition, NotFound
from erasure.identifiers import Sealed, Vault
from erasure.integrations import mapping as mapping_module
from erasure.integrations.models import WebhookScheme, WebhookSecret, WebhookSource
from erasure.integrations.signatures import new_whsec, whsec_key

DEFAULT_SCHEME = {
    Source.JIRA: WebhookScheme.JIRA,
    Source.ZENDESK: WebhookScheme.ZENDESK,
    Source.SERVICENOW: WebhookScheme.STANDARD_WEBHOOKS,
    Source.STANDARD_WEBHOOKS: WebhookScheme.STANDARD_WEBHOOKS,
}
ALLOWED_SCHEMES = {
    Source.JIRA: {WebhookScheme.JIRA},
    Source.ZENDESK: {WebhookScheme.ZENDESK},
    Source.SERVICENOW: {WebhookScheme.STANDARD_WEBHOOKS, WebhookScheme.SHARED_SECRET},
    Source.STANDARD_WEBHOOKS: {WebhookScheme.STANDARD_WEBHOOKS},
}


def secret_context(source_id: uuid.UUID) -> str:
    return f"webhook-secret:{source_id}"


def comment_token_context(source_id: uuid.UUID) -> str:
    return f"comment-token:{source_id}"


def generate_secret(scheme: WebhookScheme) -> str:
    if scheme is WebhookScheme.STANDARD_WEBHOOKS:
        return new_whsec()
    return secrets.token_urlsafe(32)


def _check_secret(scheme: WebhookScheme, secret: str) -> None:
    if len(secret) < 16 or len(secret) > 512:
        raise ValueError("a secret must be 16 to 512 characters")
    if scheme is WebhookScheme.STANDARD_WEBHOOKS:
        try:
            key = whsec_key(secret)
        except ValueError:
            raise ValueError("a Standard Webhooks secret is `whsec_` + base64") from None
        if not 24 <= len(key) <= 64:
            raise ValueError("a Standard Webhooks secret must hold 24 to 64 bytes")


def _store_secret(
    session: Session, source: WebhookSource, secret: str, *, vault: Vault
) -> WebhookSecret:
    row = WebhookSecret(source_id=source.id)
    if source.scheme is WebhookScheme.SHARED_SECRET:
        row.secret_hash = hashlib.sha256(secret.encode()).digest()
    else:
        sealed = vault.seal(secret, context=secret_context(source.id))
        row.ciphertext, row.key_id = sealed.ciphertext, sealed.key_id
    session.add(row)
    return row


def create_source(
    session: Session,
    *,
    name: str,
    system: Source,
    vault: Vault,
    scheme: WebhookScheme | None = None,
    secret: str | None = None,
    mapping: dict[str, Any] | None = None,
    org: str | None = None,
    api_key_id: uuid.UUID | None = None,
    comment_base_url: str | None = None,
    comment_user: str | None = None,
    comment_token: str | None = None,
) -> tuple[WebhookSource, str]:
    """A new source and its first secret (returned once). Raises ValueError, InvalidMapping,
    InvalidTransition (name taken)."""
    if system not in DEFAULT_SCHEME:
        raise ValueError(f"{system.value} cannot send webhooks")
    scheme = scheme or DEFAULT_SCHEME[system]
    if scheme not in ALLOWED_SCHEMES[system]:
        raise ValueError(f"{system.value} cannot use the {scheme.value} scheme")
    mapping_module.mapping_for(system, mapping)  # refuse a bad mapping now, not per delivery
    if session.scalar(select(WebhookSource.id).where(WebhookSource.name == name)):
        raise InvalidTransition("a webhook source of that name exists")
    secret = secret or generate_secret(scheme)
    _check_secret(scheme, secret)
    source = WebhookSource(
        id=uuid.uuid4(),
        name=name,
        system=system,
        scheme=scheme,
        mapping=mapping or {},
        org=org,
        api_key_id=api_key_id,
        comment_base_url=comment_base_url,
        comment_user=comment_user,
    )
    if comment_token:
        sealed = vault.seal(comment_token, context=comment_token_context(source.id))
        source.comment_token_ciphertext, source.comment_token_key_id = (
            sealed.ciphertext,
            sealed.key_id,
        )
    session.add(source)
    session.flush()
    _store_secret(session, source, secret, vault=vault)
    session.flush()
    return source, secret


def get_source(session: Session, name: str) -> WebhookSource:
    source = session.scalar(select(WebhookSource).where(WebhookSource.name == name))
    if source is None:
        raise NotFound("no such webhook source")
    return source


def rotate_secret(
    session: Session,
    source: WebhookSource,
    *,
    vault: Vault,
    secret: str | None = None,
    previous_valid_for: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> str:
    """Add a new secret; the current ones keep verifying for `previous_valid_for` (the time to
    reconfigure the sender), then stop. Returns the new secret, once."""
    now = now or datetime.now(UTC)
    secret = secret or generate_secret(source.scheme)
    _check_secret(source.scheme, secret)
    retire_at = now + previous_valid_for
    for row in _valid(session, source.id, now):
        if row.expires_at is None or row.expires_at > retire_at:
            row.expires_at = retire_at
    _store_secret(session, source, secret, vault=vault)
    session.flush()
    return secret


def _valid(session: Session, source_id: uuid.UUID, now: datetime) -> list[WebhookSecret]:
    return list(
        session.scalars(
            select(WebhookSecret)
            .where(
                WebhookSecret.source_id == source_id,
                or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
            )
            .order_by(WebhookSecret.id.desc())
        )
    )


def verification_keys(
    session: Session, source: WebhookSource, *, vault: Vault, now: datetime | None = None
) -> list[bytes]:
    """The keys (or, for a shared secret, hashes) a delivery may be signed with right now."""
    keys: list[bytes] = []
    for row in _valid(session, source.id, now or datetime.now(UTC)):
        if row.secret_hash is not None:
            keys.append(row.secret_hash)
        elif row.ciphertext is not None and row.key_id is not None:
            secret = vault.open(
                Sealed(row.key_id, row.ciphertext), context=secret_context(source.id)
            )
            keys.append(
                whsec_key(secret)
                if source.scheme is WebhookScheme.STANDARD_WEBHOOKS
                else secret.encode()
            )
    return keys


def comment_token(source: WebhookSource, *, vault: Vault) -> str | None:
    if source.comment_token_ciphertext is None or source.comment_token_key_id is None:
        return None
    return vault.open(
        Sealed(source.comment_token_key_id, source.comment_token_ciphertext),
        context=comment_token_context(source.id),
    )


def select_source(name: str) -> Select[WebhookSource]:
    return select(WebhookSource).where(WebhookSource.name == name)


def select_sources() -> Select[WebhookSource]:
    return select(WebhookSource).order_by(WebhookSource.name)
