"""Deliveries: a scene of subscriptions and due deliveries, receivers that hold their answer, the
traffic they saw, and waiting on a condition."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from erasure.deliveries import sending
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    DeliveryCircuit,
)
from erasure.integrations.transport import AddressGuard, destination_of
from erasure.workflow import Protection
from tests.support.integrations import LOOPBACK


@dataclass
class Scene:
    """Committed rows of one test, removed afterwards."""

    maker: Callable[[], Session]
    protection: Protection
    org_id: uuid.UUID
    key_id: uuid.UUID
    key_secret: str
    request_id: uuid.UUID
    subscriptions: list[uuid.UUID] = field(default_factory=list)
    destinations: set[str] = field(default_factory=set)
    leaf: int = 0

    def subscribe(self, url: str) -> tuple[uuid.UUID, str]:
        with self.maker() as session, session.begin():
            subscription, secret = callbacks.subscribe(
                session,
                url=url,
                vault=self.protection.vault,
                guard=AddressGuard.allowing(LOOPBACK),
                api_key_id=self.key_id,
            )
            session.flush()
            subscription_id = subscription.id
        assert secret is not None
        self.subscriptions.append(subscription_id)
        self.destinations.add(destination_of(url))
        return subscription_id, secret

    def deliveries(
        self, subscription_id: uuid.UUID, count: int, *, due: datetime | None = None
    ) -> list[uuid.UUID]:
        """Pending deliveries for the subscription, due at `due` (now), as the dispatcher makes
        them (one per audit leaf; these leaf numbers are the test's own)."""
        due = due or datetime.now(UTC)
        ids = []
        with self.maker() as session, session.begin():
            subscription = session.get(CallbackSubscription, subscription_id)
            assert subscription is not None
            for _ in range(count):
                self.leaf += 1
                delivery = CallbackDelivery(
                    channel=CallbackChannel.STANDARD_WEBHOOKS,
                    destination=destination_of(subscription.url),
                    subscription_id=subscription_id,
                    request_id=self.request_id,
                    leaf_id=self.leaf,
                    event="request.received",
                    body=f'{{"type":"erasure_request.received","n":{self.leaf}}}',
                    next_attempt_at=due,
                )
                session.add(delivery)
                session.flush()
                ids.append(delivery.id)
        return ids

    def row(self, delivery_id: uuid.UUID) -> CallbackDelivery:
        with self.maker() as session:
            row = session.get(CallbackDelivery, delivery_id)
            assert row is not None
            return row

    def statuses(self, ids: list[uuid.UUID]) -> list[CallbackStatus]:
        return [self.row(i).status for i in ids]

    def circuit(self, url: str) -> DeliveryCircuit | None:
        with self.maker() as session:
            return session.get(DeliveryCircuit, destination_of(url))


@dataclass
class Traffic:
    """Calls in flight across several receivers, and the most seen at once."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most_in_flight: int = 0

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


@dataclass
class HoldingReceiver:
    """Answers `status` to every POST, but while `release` is not set it holds each call open
    (the caller waits for its answer). Counts calls in flight, and the most seen at once."""

    url: str = ""
    status: int = 204
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: list[str] = field(default_factory=list)  # webhook-ids, in order of arrival
    bodies: list[bytes] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)


def prove(scene: Scene, senders: callbacks.Senders, url: str) -> None:
    """One delivery to `url` answered: its destination is proven (not new, not failing)."""
    subscription_id, _ = scene.subscribe(url)
    (delivery_id,) = scene.deliveries(subscription_id, 1)
    with scene.maker() as session, session.begin():
        assert sending.send_next(session, senders)
    assert scene.row(delivery_id).status is CallbackStatus.DELIVERED


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll a condition (never a bare sleep) with a generous timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
