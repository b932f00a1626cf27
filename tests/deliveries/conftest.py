"""Deliveries on committed data (the runner's threads and the API use their own connections):
one request, subscriptions to local receivers, delivery rows made directly, and receivers that
answer as told or hold a call open until the test releases it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from erasure import workflow
from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.core.models import IdentifierKind, Regulation, Source
from erasure.db import make_sessionmaker
from erasure.identifiers import normalize
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    DeliveryCircuit,
)
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.orgs import add_org
from erasure.workflow import Protection
from tests.support.deliveries import HoldingReceiver, Scene, Traffic
from tests.support.integrations import LOOPBACK
from tests.support.pipeline import cleanup_org


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
