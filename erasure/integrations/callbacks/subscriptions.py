"""Callback subscriptions: who is told about a request, at which URL (checked against SSRF), and
with which signing secret (sealed in the vault, rotated with an overlap, destroyed on delete).
Nothing here commits."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from erasure.errors import InvalidTransition, NotFound
from erasure.identifiers import Sealed, Vault
from erasure.integrations import signatures
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
)
from erasure.integrations.transport import AddressGuard, BlockedAddress


class InvalidCallbackUrl(ValueError):
    pass


def _check_form(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise InvalidCallbackUrl("a callback URL must not carry credentials")
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http":
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
    raise InvalidCallbackUrl("a callback URL must be https (http only to a loopback address)")


def check_url(url: str, *, guard: AddressGuard) -> str:
    """https, or http to a loopback address (local receivers); no credentials in the URL; and
    (SSRF) not a name or address that resolves to a private, loopback, link-local or metadata
    address unless the guard allows that network. Delivery checks the address again."""
    _check_form(url)
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidCallbackUrl("a callback URL must have a valid port") from None
    try:
        guard.check_host(parts.hostname or "", port)
    except BlockedAddress:
        raise InvalidCallbackUrl(
            "a callback URL must reach a public address (private, loopback, link-local and "
            "metadata addresses are refused unless ERASURE_CALLBACK_ALLOWED_NETWORKS allows them)"
        ) from None
    return url


def secret_context(subscription_id: uuid.UUID) -> str:
    return f"callback-secret:{subscription_id}"


def subscribe(
    session: Session,
    *,
    url: str,
    vault: Vault,
    guard: AddressGuard,
    channel: CallbackChannel = CallbackChannel.STANDARD_WEBHOOKS,
    api_key_id: uuid.UUID | None = None,
    webhook_source_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
) -> tuple[CallbackSubscription, str | None]:
    """A subscription and, for Standard Webhooks, its signing secret (returned once).
    Raises InvalidCallbackUrl, ValueError (no owner)."""
    if (api_key_id, webhook_source_id, request_id).count(None) != 2:
        raise ValueError("a subscription is for one API key, one webhook source or one request")
    subscription = CallbackSubscription(
        id=uuid.uuid4(),
        channel=channel,
        url=check_url(url, guard=guard),
        api_key_id=api_key_id,
        webhook_source_id=webhook_source_id,
        request_id=request_id,
    )
    secret = None
    if channel is CallbackChannel.STANDARD_WEBHOOKS:
        secret = signatures.new_whsec()
        sealed = vault.seal(secret, context=secret_context(subscription.id))
        subscription.secret_ciphertext, subscription.secret_key_id = (
            sealed.ciphertext,
            sealed.key_id,
        )
    session.add(subscription)
    session.flush()
    return subscription, secret


def _locked_subscription(session: Session, subscription_id: uuid.UUID) -> CallbackSubscription:
    # FOR NO KEY UPDATE: the subscription's key never changes, and this mode lets a delivery
    # row referencing it be written meanwhile (its foreign-key check takes FOR KEY SHARE);
    # FOR UPDATE would queue behind it and deadlock with a sender that holds the delivery row.
    subscription = session.scalar(
        select(CallbackSubscription)
        .where(CallbackSubscription.id == subscription_id)
        .with_for_update(key_share=True)
    )
    if subscription is None:
        raise NotFound("no such callback subscription")
    return subscription


def rotate_secret(
    session: Session,
    subscription_id: uuid.UUID,
    *,
    vault: Vault,
    previous_valid_for: timedelta,
    now: datetime | None = None,
) -> tuple[CallbackSubscription, str]:
    """A new signing secret (returned once). For `previous_valid_for`, every callback carries
    two signatures (Standard Webhooks allows several, space-separated): one with the new secret
    and one with the current, so receivers can switch at their pace; then only the new one.
    Raises NotFound, InvalidTransition (inactive, or not a Standard Webhooks subscription)."""
    now = now or datetime.now(UTC)
    subscription = _locked_subscription(session, subscription_id)
    if not subscription.is_active:
        raise InvalidTransition("the subscription was deleted")
    if subscription.channel is not CallbackChannel.STANDARD_WEBHOOKS:
        raise InvalidTransition("only a Standard Webhooks subscription has a secret")
    if previous_valid_for > timedelta(0) and subscription.secret_ciphertext is not None:
        subscription.previous_secret_ciphertext = subscription.secret_ciphertext
        subscription.previous_secret_key_id = subscription.secret_key_id
        subscription.previous_secret_expires_at = now + previous_valid_for
    else:
        subscription.previous_secret_ciphertext = None
        subscription.previous_secret_key_id = None
        subscription.previous_secret_expires_at = None
    secret = signatures.new_whsec()
    sealed = vault.seal(secret, context=secret_context(subscription.id))
    subscription.secret_ciphertext, subscription.secret_key_id = sealed.ciphertext, sealed.key_id
    session.flush()
    return subscription, secret


def deactivate(
    session: Session, subscription_id: uuid.UUID, *, now: datetime | None = None
) -> CallbackSubscription:
    """Stop a subscription: no new deliveries, its pending ones are dead-lettered (kept for the
    record), and its secrets are destroyed. Idempotent. Raises NotFound.

    Never waits on a receiver: no lock is held during a delivery's HTTP call. A delivery already
    on the wire ends delivered if the receiver accepts it, dead otherwise."""
    now = now or datetime.now(UTC)
    subscription = _locked_subscription(session, subscription_id)
    subscription.is_active = False
    subscription.secret_ciphertext = subscription.secret_key_id = None
    subscription.previous_secret_ciphertext = subscription.previous_secret_key_id = None
    subscription.previous_secret_expires_at = None
    session.execute(
        update(CallbackDelivery)
        .where(
            CallbackDelivery.subscription_id == subscription.id,
            CallbackDelivery.status == CallbackStatus.PENDING,
        )
        .values(status=CallbackStatus.DEAD, last_error="subscription deleted")
    )
    session.flush()
    return subscription


def signing_keys(subscription: CallbackSubscription, *, vault: Vault, now: datetime) -> list[bytes]:
    """The current secret's key, then the previous one's while its overlap lasts."""
    sealed = [(subscription.secret_key_id, subscription.secret_ciphertext)]
    if (
        subscription.previous_secret_expires_at is not None
        and subscription.previous_secret_expires_at > now
    ):
        sealed.append(
            (subscription.previous_secret_key_id, subscription.previous_secret_ciphertext)
        )
    keys = []
    for key_id, ciphertext in sealed:
        if key_id is None or ciphertext is None:
            continue
        secret = vault.open(Sealed(key_id, ciphertext), context=secret_context(subscription.id))
        keys.append(signatures.whsec_key(secret))
    return keys
