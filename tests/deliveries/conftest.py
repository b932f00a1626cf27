"""Deliveries on committed data (the runner's threads and the API use their own connections):
one request, subscriptions to local receivers, delivery rows made directly, and receivers that
answer as told or hold a call open until the test releases it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from erasure import workflow
from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.core.models import IdentifierKind, Regulation, Source
from erasure.db import make_sessionmaker
from erasure.deliveries import sending
from erasure.identifiers import normalize
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    DeliveryCircuit,
)
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport, destination_of
from erasure.orgs import add_org
from erasure.workflow import Protection
from tests.integrations.conftest import LOOPBACK
from tests.pipeline.conftest import cleanup_org


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


@pytest.fixture
def scene(engine: Engine, protection: Protection) -> Iterator[Scene]:
    maker = make_sessionmaker(engine)
    with maker() as session, session.begin():
        # An org whose Salesforce is a closed local port: nothing here reaches it.
        org = add_org(
            session, name=f"dl-{uuid.uuid4().hex[:8]}", my_domain_url="https://127.0.0.1:9"
        )
        key = create_api_key(session, name="deliveries test", role=Role.ADMIN)
        session.flush()
        request = workflow.submit_request(
            session,
            workflow.Submission(
                identifiers=[
                    workflow.Identifier(
                        IdentifierKind.PHONE, normalize(IdentifierKind.PHONE, "+14155550123")
                    )
                ],
                regulation=Regulation.GDPR,
                source=Source.API,
                org=org.name,
                api_key_id=key.record.id,
            ),
            protection=protection,
            default_org=None,
        )
        made = Scene(
            maker=maker,
            protection=protection,
            org_id=org.id,
            key_id=key.record.id,
            key_secret=key.secret,
            request_id=request.id,
        )
    yield made
    with maker() as session, session.begin():
        session.execute(
            delete(CallbackSubscription).where(CallbackSubscription.id.in_(made.subscriptions))
        )
        session.execute(
            delete(DeliveryCircuit).where(DeliveryCircuit.destination.in_(made.destinations))
        )
    cleanup_org(maker, made.org_id)
    with maker() as session, session.begin():
        session.execute(delete(ApiKey).where(ApiKey.id == made.key_id))


@pytest.fixture
def senders(protection: Protection, processor_config: ProcessorConfig) -> callbacks.Senders:
    return callbacks.Senders(
        transport=RequestsTransport(timeout_s=(2.0, 60.0), guard=AddressGuard.allowing(LOOPBACK)),
        vault=protection.vault,
        processor=processor_config,
    )


@pytest.fixture
def no_other_due(scene: Scene) -> None:
    """The runner sends every due delivery in the database: none may be left by other tests."""
    with scene.maker() as session:
        others = session.scalars(
            select(CallbackDelivery.id).where(
                CallbackDelivery.status == CallbackStatus.PENDING,
                CallbackDelivery.request_id != scene.request_id,
            )
        ).all()
    assert not others, "another test left pending deliveries in this database"


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


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., HoldingReceiver]]:
    servers: list[tuple[Any, HoldingReceiver]] = []

    def make(
        *, status: int = 204, hold: bool = False, traffic: Traffic | None = None
    ) -> HoldingReceiver:
        state = HoldingReceiver(status=status)
        shared = traffic or Traffic()
        if not hold:
            state.release.set()

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            request = Request(environ)
            webhook_id = request.headers.get("webhook-id", "")
            body = request.get_data()
            with state.lock:
                state.arrived.append(webhook_id)
                state.bodies.append(body)
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
            shared.enter()
            state.release.wait(90)
            shared.leave()
            with state.lock:
                state.in_flight -= 1
                state.answered.append(webhook_id)
            return Response(b"", status=state.status)(environ, start_response)

        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state.url = f"http://127.0.0.1:{server.server_port}/hooks"
        servers.append((server, state))
        return state

    yield make
    for server, state in servers:
        state.release.set()
        server.shutdown()
        server.server_close()


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
