"""What one attempt of a delivery row sends: the stored bytes, signed now (Standard Webhooks
secrets, or the OpenDSR processor key), and the retry policy between attempts. The loop that
sends (backoff, dead letters, circuit breakers) is erasure.deliveries."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from erasure.errors import NotFound
from erasure.identifiers import Vault
from erasure.integrations import comments, processor, signatures
from erasure.integrations.callbacks.subscriptions import signing_keys
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackSubscription,
    WebhookSource,
)
from erasure.integrations.transport import Transport


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
class Senders:
    """What sending needs: HTTP, the keys to sign with, the retry policy."""

    transport: Transport
    vault: Vault
    processor: processor.ProcessorConfig
    policy: RetryPolicy = RetryPolicy()


def processor_headers(identity: processor.Identity, body: bytes) -> dict[str, str]:
    """OpenDSR's signature headers over `body`, and (OpenDSR §10.1: the prior name's headers are
    still honoured) the same under their OpenGDPR names, for controllers not yet migrated."""
    signature = identity.sign(body)
    return {
        "X-OpenDSR-Signature": signature,
        "X-OpenDSR-Processor-Domain": identity.domain,
        "X-OpenGDPR-Signature": signature,
        "X-OpenGDPR-Processor-Domain": identity.domain,
    }


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
        identity = processor.identity(session, vault=senders.vault, config=senders.processor)
        headers |= processor_headers(identity, body)
        return "POST", subscription.url, headers, body
    keys = signing_keys(subscription, vault=senders.vault, now=now)
    if not keys:
        raise SubscriptionGone("the subscription has no secret")
    headers |= signatures.standard_headers(
        keys=keys, msg_id=f"msg_{delivery.id.hex}", body=body, now=now
    )
    return "POST", subscription.url, headers, body
