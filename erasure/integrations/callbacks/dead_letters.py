"""Dead letters: listing deliveries by status, and putting one back in the queue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from erasure.errors import InvalidTransition, NotFound
from erasure.integrations.models import (
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    DeliveryCircuit,
)


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
