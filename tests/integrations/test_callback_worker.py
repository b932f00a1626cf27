"""A worker killed (kill -9, parent and pool child) while a callback's HTTP POST is in flight:
the callback is delivered again by the next worker, with the same webhook-id and a valid
Standard Webhooks signature, and its delivery row ends delivered. Real processes throughout:
`celery worker --beat` on a private redis-server, the test database, a receiver on 127.0.0.1;
the dispatcher and the sender run from beat through the broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from erasure import workflow
from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.core.models import IdentifierKind, Regulation, Source
from erasure.db import make_sessionmaker
from erasure.identifiers import normalize
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    IntegrationCursor,
)
from erasure.integrations.transport import AddressGuard
from erasure.orgs import add_org
from erasure.workflow import Protection
from tests.support.integrations import LOOPBACK
from tests.support.pipeline import cleanup_org
from tests.support.processes import RedisServer, Worker, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@dataclass
class HoldingReceiver:
    """Records every POST; holds the first one open until released (so a kill lands while the
    worker waits for the answer), and answers the others 204."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    first_arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [headers["webhook-id"] for headers, _ in self.received]


@pytest.fixture
def holding_receiver() -> Iterator[HoldingReceiver]:
    state = HoldingReceiver()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        headers = {k.lower(): v for k, v in request.headers.items()}
        with state.lock:
            state.received.append((headers, request.get_data()))
            first = len(state.received) == 1
        if first:
            state.first_arrived.set()
            state.release.wait(60)
        return Response(b"", status=204)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_worker_killed_mid_delivery_delivers_again_with_the_same_webhook_id(
    settings: Settings,
    database_url: str,
    engine: Engine,
    protection: Protection,
    tmp_path: Path,
    holding_receiver: HoldingReceiver,
) -> None:
    maker: Callable[[], Session] = make_sessionmaker(engine)
    with maker() as session, session.begin():
        # An org whose Salesforce is a closed local port: the pipeline fails fast, on 127.0.0.1.
        org = add_org(
            session, name=f"cb-{uuid.uuid4().hex[:8]}", my_domain_url="https://127.0.0.1:9"
        )
        key = create_api_key(session, name="callback worker test", role=Role.INTEGRATION).record
        session.flush()
        subscription, secret = callbacks.subscribe(
            session,
            url=holding_receiver.url,
            vault=protection.vault,
            guard=AddressGuard.allowing(LOOPBACK),
            api_key_id=key.id,
        )
        # The dispatcher starts after what earlier tests left in this database.
        last = session.scalar(select(func.max(AuditLeaf.id))) or 0
        session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
        org_id, org_name, key_id, subscription_id = org.id, org.name, key.id, subscription.id
    assert secret is not None

    redis_server = RedisServer(tmp_path)
    redis_server.start()
    env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
    env["ERASURE_CALLBACK_ALLOWED_NETWORKS"] = ",".join(LOOPBACK)
    env["ERASURE_PUBLIC_URL"] = "https://erasure.test"
    workers: list[Worker] = []
    try:
        with maker() as session, session.begin():
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
                    org=org_name,
                    api_key_id=key_id,
                ),
                protection=protection,
                default_org=None,
            )
            request_id = request.id

        first = Worker(env, tmp_path)
        workers.append(first)
        first.start()
        # Beat -> broker -> dispatch_callbacks makes the row; send_callbacks POSTs it, and the
        # receiver holds that POST open.
        assert holding_receiver.first_arrived.wait(75), "no callback reached the receiver"
        held_id = holding_receiver.ids()[0]
        assert first.children(), "the worker's pool child is alive, waiting for the answer"
        first.kill_all()  # kill -9 the parent and the pool child, mid-delivery

        second = Worker(env, tmp_path)
        workers.append(second)
        second.start()
        _poll(lambda: holding_receiver.ids().count(held_id) >= 2, 75, "the redelivery")

        with holding_receiver.lock:
            copies = [(h, b) for h, b in holding_receiver.received if h["webhook-id"] == held_id]
        verifier = standardwebhooks.Webhook(secret)
        bodies = set()
        for headers, body in copies:
            verifier.verify(body, headers)  # raises when the signature is not valid
            bodies.add(body)
        assert len(bodies) == 1, "every attempt sends the same bytes"

        delivery_id = uuid.UUID(hex=held_id.removeprefix("msg_"))

        def delivered() -> bool:
            with maker() as session:
                row = session.get(CallbackDelivery, delivery_id)
                return row is not None and row.status is CallbackStatus.DELIVERED

        _poll(delivered, 30, "the delivery row to be delivered")
        with maker() as session:
            row = session.get(CallbackDelivery, delivery_id)
            assert row is not None
            assert row.request_id == request_id
            assert row.subscription_id == subscription_id
    finally:
        for worker in workers:
            worker.kill_all()
        redis_server.stop()
        holding_receiver.release.set()
        with maker() as session, session.begin():
            session.execute(
                delete(CallbackSubscription).where(CallbackSubscription.id == subscription_id)
            )
        cleanup_org(maker, org_id)
        with maker() as session, session.begin():
            session.execute(delete(ApiKey).where(ApiKey.id == key_id))
