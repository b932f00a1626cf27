"""Status callbacks out: subscriptions, a dispatcher that turns the audit log's request events
into delivery rows, and what one attempt of a row sends (signed headers, the stored bytes).

The dispatcher reads the audit log after a stored cursor, so the pipeline needs no hook: every
state change already appends a leaf. Delivery rows are the outbox: each is sent until a 2xx, with
the same webhook-id and the same bytes on every attempt (erasure.deliveries sends them, with
backoff, jitter, a dead letter and a circuit breaker per destination). Payloads carry no subject
identifier. Nothing here commits.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, RequestStatus
from erasure.errors import InvalidTransition, NotFound
from erasure.identifiers import Sealed, Vault
from erasure.integrations import comments, processor, signatures
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    DeliveryCircuit,
    IntegrationCursor,
    WebhookDelivery,
    WebhookSource,
)
from erasure.integrations.transport import AddressGuard, BlockedAddress, Transport, destination_of

logger = logging.getLogger(__name__)

CURSOR = "callbacks"
#: A leaf id still missing this long after later ones committed belongs to a rolled-back
#: transaction (identity values are never reused); until then the cursor waits for it.
GAP_HOLD = timedelta(minutes=10)
COMMENT_EVENTS = frozenset({"request.completed", "request.completed_no_data", "request.failed"})
OPENDSR_API_VERSION = "2.0"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter. The defaults keep retrying for more than 24 hours: the
    shortest possible schedule (every delay at its low jitter bound) sums to about 25 hours."""

    base_s: float = 10.0
    cap_s: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 40

    def delay(self, attempts: int) -> timedelta:
        nominal = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=nominal * random.uniform(1 - self.jitter, 1 + self.jitter))

    def minimum_window(self) -> timedelta:
        return timedelta(
            seconds=sum(
                min(self.cap_s, self.base_s * 2 ** (n - 1)) * (1 - self.jitter)
                for n in range(1, self.max_attempts)
            )
        )


@dataclass(frozen=True)
class Links:
    public_url: str

    def request(self, request_id: uuid.UUID) -> str:
        return f"{self.public_url.rstrip('/')}/v1/erasure-requests/{request_id}"

    def certificate(self, request_id: uuid.UUID) -> str:
        return self.request(request_id) + "/certificate"


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


# --- The dispatcher: audit leaves -> delivery rows ---


def _event_status(kind: str, erasure_request: ErasureRequest) -> RequestStatus:
    try:
        return RequestStatus(kind.removeprefix("request."))
    except ValueError:
        return erasure_request.status


def opendsr_status(status: RequestStatus) -> str:
    if status in {RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA}:
        return "completed"
    if status in {RequestStatus.CANCELLED, RequestStatus.REJECTED, RequestStatus.FAILED}:
        return "cancelled"
    if status in {RequestStatus.RECEIVED, RequestStatus.AWAITING_APPROVAL, RequestStatus.APPROVED}:
        return "pending"
    return "in_progress"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def standard_body(
    erasure_request: ErasureRequest, *, kind: str, at: datetime, links: Links
) -> dict[str, Any]:
    """The Standard Webhooks payload: ids, status, reference, dates, links. No identifier."""
    status = _event_status(kind, erasure_request)
    return {
        "type": f"erasure_request.{kind.removeprefix('request.')}",
        "timestamp": _iso(at),
        "data": {
            "id": str(erasure_request.id),
            "status": status.value,
            "reference": {
                "system": erasure_request.reference_system,
                "id": erasure_request.reference_id,
                "url": erasure_request.reference_url,
            },
            "due_at": _iso(erasure_request.due_at),
            "predicted_completion_at": _iso(erasure_request.predicted_completion_at),
            "url": links.request(erasure_request.id),
            "certificate_url": links.certificate(erasure_request.id)
            if status is RequestStatus.COMPLETED
            else None,
        },
    }


def opendsr_body(
    erasure_request: ErasureRequest, *, kind: str, callback_url: str, links: Links
) -> dict[str, Any]:
    status = _event_status(kind, erasure_request)
    return {
        "api_version": OPENDSR_API_VERSION,
        "controller_id": str(erasure_request.api_key_id) if erasure_request.api_key_id else None,
        "subject_request_id": erasure_request.reference_id,
        "request_status": opendsr_status(status),
        "expected_completion_time": _iso(
            erasure_request.predicted_completion_at or erasure_request.due_at
        ),
        "status_callback_url": callback_url,
        "results_url": links.certificate(erasure_request.id)
        if status is RequestStatus.COMPLETED
        else None,
    }


def _encode(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def _source_of(session: Session, request_id: uuid.UUID) -> WebhookSource | None:
    return session.scalar(
        select(WebhookSource)
        .join(WebhookDelivery, WebhookDelivery.source_id == WebhookSource.id)
        .where(WebhookDelivery.request_id == request_id)
        .limit(1)
    )


def _rows_for(
    session: Session, leaf: AuditLeaf, erasure_request: ErasureRequest, links: Links
) -> list[dict[str, Any]]:
    source = _source_of(session, erasure_request.id)
    owners = [CallbackSubscription.request_id == erasure_request.id]
    if erasure_request.api_key_id is not None:
        owners.append(CallbackSubscription.api_key_id == erasure_request.api_key_id)
    if source is not None:
        owners.append(CallbackSubscription.webhook_source_id == source.id)
    subscriptions = session.scalars(
        select(CallbackSubscription).where(CallbackSubscription.is_active, or_(*owners))
    ).all()
    rows: list[dict[str, Any]] = []
    for subscription in subscriptions:
        if subscription.channel is CallbackChannel.OPENDSR:
            document = opendsr_body(
                erasure_request, kind=leaf.kind, callback_url=subscription.url, links=links
            )
        else:
            document = standard_body(
                erasure_request, kind=leaf.kind, at=leaf.created_at, links=links
            )
        rows.append(
            {
                "channel": subscription.channel,
                "destination": destination_of(subscription.url),
                "subscription_id": subscription.id,
                "request_id": erasure_request.id,
                "leaf_id": leaf.id,
                "event": leaf.kind,
                "body": _encode(document),
            }
        )
    if (
        leaf.kind in COMMENT_EVENTS
        and source is not None
        and source.comment_base_url
        and erasure_request.reference_id
    ):
        status = _event_status(leaf.kind, erasure_request)
        rows.append(
            {
                "channel": CallbackChannel.TICKET_COMMENT,
                "destination": destination_of(source.comment_base_url),
                "webhook_source_id": source.id,
                "request_id": erasure_request.id,
                "leaf_id": leaf.id,
                "event": leaf.kind,
                "body": _encode(
                    {
                        "ticket": erasure_request.reference_id,
                        "text": comments.comment_text(
                            erasure_request.id,
                            status=status.value,
                            outcome=erasure_request.outcome,
                            certificate_url=links.certificate(erasure_request.id)
                            if status is RequestStatus.COMPLETED
                            else None,
                        ),
                    }
                ),
            }
        )
    return rows


def dispatch(
    session: Session, *, links: Links, limit: int = 1000, now: datetime | None = None
) -> int:
    """Create delivery rows for request events after the cursor; returns how many. The cursor row
    is locked, so dispatchers never run concurrently, and rows are inserted idempotently (one per
    subscription or source and leaf), so a leaf seen twice is delivered once. Does not commit."""
    now = now or datetime.now(UTC)
    session.execute(
        insert(IntegrationCursor).values(name=CURSOR, leaf_id=0).on_conflict_do_nothing()
    )
    cursor = session.scalar(
        select(IntegrationCursor).where(IntegrationCursor.name == CURSOR).with_for_update()
    )
    assert cursor is not None  # inserted just above  # noqa: S101
    leaves = session.scalars(
        select(AuditLeaf).where(AuditLeaf.id > cursor.leaf_id).order_by(AuditLeaf.id).limit(limit)
    ).all()
    created = 0
    advance_to = cursor.leaf_id
    blocked = False
    for leaf in leaves:
        if not blocked and (leaf.id == advance_to + 1 or leaf.created_at < now - GAP_HOLD):
            advance_to = leaf.id
        else:
            blocked = True  # a gap: a transaction may still commit an earlier leaf
        if leaf.request_id is None or not leaf.kind.startswith("request."):
            continue
        erasure_request = session.get(ErasureRequest, leaf.request_id)
        if erasure_request is None:
            continue
        rows = _rows_for(session, leaf, erasure_request, links)
        if rows:
            for row in rows:
                inserted = session.scalar(
                    insert(CallbackDelivery)
                    .values(**row)
                    .on_conflict_do_nothing()
                    .returning(CallbackDelivery.id)
                )
                created += inserted is not None
    cursor.leaf_id = advance_to
    cursor.updated_at = now
    session.flush()
    return created


# --- Delivery ---


@dataclass(frozen=True)
class Senders:
    """What sending needs: HTTP, the keys to sign with, the retry policy."""

    transport: Transport
    vault: Vault
    processor_common_name: str
    policy: RetryPolicy = RetryPolicy()


class SubscriptionGone(NotFound):
    """The delivery's subscription was deleted (or its secrets destroyed): it is never sent."""


def request_for(
    session: Session, delivery: CallbackDelivery, senders: Senders, now: datetime
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, url, headers, body) of one attempt: the stored bytes, signed now. Raises
    SubscriptionGone, NotFound (the webhook source was removed), CommentNotConfigured."""
    body = delivery.body.encode()
    if delivery.channel is CallbackChannel.TICKET_COMMENT:
        source = session.get(WebhookSource, delivery.webhook_source_id)
        if source is None:
            raise NotFound("the webhook source was removed")
        return comments.request_for(source, json.loads(delivery.body), vault=senders.vault)
    subscription = session.get(CallbackSubscription, delivery.subscription_id)
    if subscription is None or not subscription.is_active:
        raise SubscriptionGone("the subscription was removed")
    headers = {"Content-Type": "application/json", "User-Agent": "erasure-callbacks"}
    if subscription.channel is CallbackChannel.OPENDSR:
        key = processor.current(
            session, vault=senders.vault, common_name=senders.processor_common_name
        )
        headers["X-OpenDSR-Signature"] = processor.sign(key, body, vault=senders.vault)
        headers["X-OpenDSR-Processor-Domain"] = senders.processor_common_name
        return "POST", subscription.url, headers, body
    keys = signing_keys(subscription, vault=senders.vault, now=now)
    if not keys:
        raise SubscriptionGone("the subscription has no secret")
    headers |= signatures.standard_headers(
        keys=keys, msg_id=f"msg_{delivery.id.hex}", body=body, now=now
    )
    return "POST", subscription.url, headers, body


def list_deliveries(
    session: Session, *, statuses: Sequence[CallbackStatus], limit: int = 100
) -> list[CallbackDelivery]:
    return list(
        session.scalars(
            select(CallbackDelivery)
            .where(CallbackDelivery.status.in_(statuses))
            .order_by(CallbackDelivery.created_at.desc())
            .limit(limit)
        )
    )


def redeliver(
    session: Session, delivery_id: uuid.UUID, *, now: datetime | None = None
) -> CallbackDelivery:
    """Put a dead (or pending) delivery back in the queue, due now, with a fresh retry budget;
    if its destination's circuit is open, it lets one probe through now (a person asking for a
    redelivery has usually just fixed the receiver). Raises NotFound, InvalidTransition (already
    delivered)."""
    delivery = session.scalar(
        select(CallbackDelivery).where(CallbackDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None:
        raise NotFound("no such callback delivery")
    if delivery.status is CallbackStatus.DELIVERED:
        raise InvalidTransition("the callback was already delivered")
    if delivery.subscription_id is not None:
        subscription = session.get(CallbackSubscription, delivery.subscription_id)
        if subscription is None or not subscription.is_active:
            raise InvalidTransition("the subscription was deleted")
    now = now or datetime.now(UTC)
    delivery.status = CallbackStatus.PENDING
    delivery.attempts = 0
    delivery.claim_id = None  # an attempt still in flight no longer records its outcome here
    delivery.next_attempt_at = now
    session.execute(
        update(DeliveryCircuit)
        .where(
            DeliveryCircuit.destination == delivery.destination,
            DeliveryCircuit.opened_until > now,
            DeliveryCircuit.probe_claim_id.is_(None),
        )
        .values(opened_until=now)
    )
    session.flush()
    return delivery
