"""Access requests cancelled and reported: over real HTTP to the live app, retrieval in process
against the sandbox, callbacks dispatched from the audit log and delivered, signed, to a real
receiver. A cancel is refused once the export is built; before that it discards what was read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import standardwebhooks
from sqlalchemy import func, select

from erasure.access import retrieve
from erasure.access.budget import EntriesWindow
from erasure.access.events import AccessEvents
from erasure.access.models import AccessRead, AccessRequest, AccessStatus
from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackDelivery, IntegrationCursor
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.integrations import LOOPBACK
from tests.support.officers import Caller, caller
from tests.support.pipeline import World
from tests.support.receivers import Receiver, receiver
from tests.support.web import LiveServer

LINKS = callbacks.Links("https://erasure.test")
REASON = "Subject +14155550199 withdrew the request by phone"
EVENTS = [AccessEvents()]


@pytest.fixture
def integration(world: World, live_server: LiveServer) -> Iterator[Caller]:
    made = caller(world, live_server.url, Role.INTEGRATION)
    yield made
    made.http.close()


@pytest.fixture
def officer(world: World, live_server: LiveServer) -> Iterator[Caller]:
    made = caller(world, live_server.url, Role.OFFICER)
    yield made
    made.http.close()


@pytest.fixture
def hooks(world: World, integration: Caller) -> Iterator[tuple[Receiver, str]]:
    """A receiver subscribed (over HTTP) to the integration's requests, and its secret; the
    dispatcher starts after every leaf already in the database."""
    with world.session() as session, session.begin():
        last = session.scalar(select(func.max(AuditLeaf.id))) or 0
        session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    with receiver() as rx:
        made = integration.post("/v1/callback-subscriptions", {"url": rx.url + "/hooks"})
        assert made.status_code == 201, made.text
        yield rx, made.json()["secret"]


def _senders(world: World, processor_config: ProcessorConfig) -> callbacks.Senders:
    return callbacks.Senders(
        transport=RequestsTransport(timeout_s=(2.0, 5.0), guard=AddressGuard.allowing(LOOPBACK)),
        vault=world.ctx.vault,
        processor=processor_config,
    )


def _deliver(world: World, processor_config: ProcessorConfig) -> int:
    from erasure.deliveries import sending

    with world.session() as session, session.begin():
        callbacks.dispatch(session, links=LINKS, others=EVENTS)
    sent = 0
    with world.session() as session:
        while sending.send_next(session, _senders(world, processor_config)):
            sent += 1
        session.commit()
    return sent


def _submit(integration: Caller, world: World, phone: str) -> uuid.UUID:
    created = integration.post(
        "/v1/access-requests",
        {"subject": {"phone": phone}, "regulation": "gdpr", "org": world.org_name},
    )
    assert created.status_code == 202, created.text
    return uuid.UUID(created.json()["id"])


def _status(world: World, access_id: uuid.UUID) -> AccessStatus:
    with world.session() as session:
        return session.get_one(AccessRequest, access_id).status


def _bodies(rx: Receiver, secret: str) -> list[dict[str, object]]:
    verifier = standardwebhooks.Webhook(secret)
    out = []
    for got in rx.received:
        headers = {k.lower(): v for k, v in got.headers.items()}
        out.append(dict(verifier.verify(got.body, headers)))
    return out


def test_an_access_requests_events_reach_its_subscribers_signed_and_without_the_subject(
    world: World,
    integration: Caller,
    hooks: tuple[Receiver, str],
    processor_config: ProcessorConfig,
) -> None:
    rx, secret = hooks
    access_id = _submit(integration, world, demo_phone(2))
    retrieve.run(world.ctx, retrieve.AccessTunables())
    assert _status(world, access_id) is AccessStatus.READY
    assert _deliver(world, processor_config) == 3
    assert _deliver(world, processor_config) == 0  # a leaf is delivered once
    bodies = _bodies(rx, secret)
    assert [b["type"] for b in bodies] == [
        "access_request.received",
        "access_request.retrieving",
        "access_request.ready",
    ]
    ready = bodies[-1]["data"]
    assert isinstance(ready, dict)
    assert ready["id"] == str(access_id) and ready["status"] == "ready"
    assert ready["url"] == f"https://erasure.test/v1/access-requests/{access_id}"
    assert ready["certificate_url"] == ready["url"] + "/certificate"
    assert "export" not in json.dumps(ready)  # download links are the officer's, never sent
    raw = b"".join(got.body for got in rx.received).decode()
    assert demo_phone(2) not in raw and demo_phone(2).lstrip("+") not in raw
    with world.session() as session:
        rows = session.scalars(
            select(CallbackDelivery).where(CallbackDelivery.access_request_id == access_id)
        ).all()
    assert len(rows) == 3 and all(row.request_id is None for row in rows)


def test_a_cancel_before_the_export_discards_the_reads_and_is_reported(
    world: World,
    integration: Caller,
    officer: Caller,
    hooks: tuple[Receiver, str],
    processor_config: ProcessorConfig,
) -> None:
    rx, secret = hooks
    # Demo user 1 has two conversations: one call a run reads one, and leaves the other.
    tunables = retrieve.AccessTunables(window=EntriesWindow(calls=1, window_s=60))
    with world.clock.hold():
        access_id = _submit(integration, world, demo_phone(1))
        retrieve.run(world.ctx, tunables)
        assert _status(world, access_id) is AccessStatus.RETRIEVING
        cancelled = integration.post(f"/v1/access-requests/{access_id}/cancel", {"reason": REASON})
        assert cancelled.status_code == 200, cancelled.text
        shown = cancelled.json()
        assert (shown["status"], shown["outcome"]) == ("cancelled", "cancelled")
        assert shown["cancel_reason"] is None  # integrations see there is one, not what
        assert REASON not in cancelled.text
        world.clock.advance(61)
        calls = world.sandbox.org.call_count("entries")
        retrieve.run(world.ctx, tunables)
    assert world.sandbox.org.call_count("entries") == calls  # nothing more is read
    assert _status(world, access_id) is AccessStatus.CANCELLED
    with world.session() as session:
        assert not session.scalars(
            select(AccessRead).where(AccessRead.request_id == access_id)
        ).all()
        (leaf,) = [
            json.loads(blob)
            for blob in session.scalars(
                select(AuditLeaf.leaf).where(AuditLeaf.request_id == access_id)
            )
            if json.loads(blob)["kind"] == "access.cancelled"
        ]
    assert leaf["data"]["from_status"] == "retrieving" and leaf["data"]["reads_discarded"] == 2
    assert REASON not in json.dumps(leaf) and "+14155550199" not in json.dumps(leaf)

    read_by_officer = officer.get(f"/v1/access-requests/{access_id}")
    assert read_by_officer.status_code == 200
    assert read_by_officer.json()["cancel_reason"] == REASON
    again = integration.post(f"/v1/access-requests/{access_id}/cancel", {"reason": "again"})
    assert again.status_code == 409

    _deliver(world, processor_config)
    types = [b["type"] for b in _bodies(rx, secret)]
    assert types[-1] == "access_request.cancelled"
    assert all(REASON.encode() not in got.body for got in rx.received)


def test_a_cancel_once_the_export_is_built_is_refused_and_keeps_it(
    world: World, integration: Caller, officer: Caller
) -> None:
    access_id = _submit(integration, world, demo_phone(2))
    retrieve.run(world.ctx, retrieve.AccessTunables())
    assert _status(world, access_id) is AccessStatus.READY
    refused = officer.post(f"/v1/access-requests/{access_id}/cancel", {"reason": "too late"})
    assert refused.status_code == 409
    assert "export" in refused.json()["detail"]
    assert _status(world, access_id) is AccessStatus.READY
    assert officer.get(f"/v1/access-requests/{access_id}").json()["links"]["export_json"]


def test_a_cancel_names_no_other_integrations_request_and_needs_a_reason(
    world: World, integration: Caller, officer: Caller, live_server: LiveServer
) -> None:
    access_id = _submit(integration, world, demo_phone(2))
    other = caller(world, live_server.url, Role.INTEGRATION)
    try:
        assert (
            other.post(f"/v1/access-requests/{access_id}/cancel", {"reason": "x"}).status_code
            == 404
        )
    finally:
        other.http.close()
    assert integration.post(f"/v1/access-requests/{access_id}/cancel", {}).status_code == 422
    missing = officer.post(f"/v1/access-requests/{uuid.uuid4()}/cancel", {"reason": "x"})
    assert missing.status_code == 404
    assert _status(world, access_id) is AccessStatus.RECEIVED
