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
