"""Access callbacks through the deployed path: a real Celery worker with beat retrieves the
access request from the sandbox, its dispatch tick words the access leaves (erasure.access.events,
wired in erasure.tasks.integrations) and its delivery tick sends them, signed, to a real
receiver subscribed over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import standardwebhooks

from erasure.accounts.models import Role
from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.integrations import LOOPBACK
from tests.support.officers import caller, wait_for
from tests.support.pipeline import World
from tests.support.processes import Worker
from tests.support.receivers import receiver
from tests.support.web import LiveServer

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_worker_delivers_an_access_requests_ready_event(
    world: World, live_server: LiveServer, make_worker: Callable[..., Worker]
) -> None:
    integration = caller(world, live_server.url, Role.INTEGRATION)
    try:
        with receiver() as rx:
            made = integration.post("/v1/callback-subscriptions", {"url": rx.url + "/hooks"})
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            created = integration.post(
                "/v1/access-requests",
                {"subject": {"phone": demo_phone(2)}, "regulation": "gdpr", "org": world.org_name},
            )
            assert created.status_code == 202, created.text
            access_id = created.json()["id"]
            make_worker(extra_env={"ERASURE_CALLBACK_ALLOWED_NETWORKS": ",".join(LOOPBACK)})

            def types() -> list[str]:
                return [json.loads(got.body)["type"] for got in list(rx.received)]

            wait_for("the ready callback", lambda: "access_request.ready" in types(), 120)
            verifier = standardwebhooks.Webhook(secret)
            for got in list(rx.received):
                headers = {k.lower(): v for k, v in got.headers.items()}
                body = verifier.verify(got.body, headers)
                assert body["data"]["id"] == access_id
                assert demo_phone(2).encode() not in got.body
            assert types()[0] == "access_request.received"
    finally:
        integration.http.close()
