"""Access requests end to end: over real HTTP to the app, a real Celery worker, the sandbox.
An officer submits, the worker retrieves, the officer downloads through the expiring link, and an
erasure of the same subject then waits for the activity window instead of spending a call on 412."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import delete, select

from erasure.access.models import AccessRequest
from erasure.accounts.models import Role
from erasure.api.models import IdempotencyRecord
from erasure.api_keys import create_api_key
from erasure.audit.models import AuditLeaf
from erasure.core.models import DeleteCall, RequestStatus
from erasure.outbox.models import OutboxMessage
from erasure.pipeline.models import ConversationActivity
from erasure.salesforce.sandbox.seed import add_end_user, demo_phone
from tests.support.pipeline import World
from tests.support.processes import Worker
from tests.support.web import LiveServer

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ACTIVITY_S = 3.0


@dataclass
class Officer:
    base: str
    headers: dict[str, str]
    http: requests.Session

    def post(self, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
        return self.http.post(
            self.base + path, json=body, headers={**self.headers, **headers}, timeout=10
        )

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, headers=self.headers, timeout=10)


@pytest.fixture
def officer(world: World, live_server: LiveServer) -> Iterator[Officer]:
    with world.session() as session:
        new = create_api_key(session, name="access e2e", role=Role.OFFICER)
        session.commit()
        key_id = new.record.id
    http = requests.Session()
    yield Officer(live_server.url, {"Authorization": f"Bearer {new.secret}"}, http)
    http.close()
    with world.session() as session, session.begin():
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.api_key_id == key_id))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_an_officer_gets_the_export_and_a_later_erasure_waits_for_the_window(
    world: World, officer: Officer, make_worker: Callable[..., Worker], live_server: LiveServer
) -> None:
    world.sandbox.org.configure(entries_activity_s=ACTIVITY_S - 1)
    make_worker(extra_env={"ERASURE_ACCESS_ACTIVITY_S": str(ACTIVITY_S)})
    body = {
        "subject": {"phone": demo_phone(2)},
        "regulation": "gdpr",
        "org": world.org_name,
        "reference": {"system": "jira", "id": "PRIV-17"},
    }
    key = str(uuid.uuid4())
    created = officer.post("/v1/access-requests", body, **{"Idempotency-Key": key})
    assert created.status_code == 202, created.text
    access_id = created.json()["id"]
    replay = officer.post("/v1/access-requests", body, **{"Idempotency-Key": key})
    assert replay.json()["id"] == access_id and replay.headers["Idempotent-Replayed"] == "true"

    ready = wait_for(
        "the export",
        lambda: (
            (r := officer.get(f"/v1/access-requests/{access_id}").json())["status"] == "ready" and r
        ),
    )
    assert (ready["end_users"], ready["conversations"], ready["entries"]) == (1, 1, 3)
    assert ready["due_at"] and ready["reference"]["id"] == "PRIV-17"
    public = live_server.settings.public_url.rstrip("/")
    json_link = ready["links"]["export_json"].replace(public, live_server.url)
    html_link = ready["links"]["export_html"].replace(public, live_server.url)
    exported = requests.get(json_link, timeout=10)  # the link alone: no API key
    assert exported.status_code == 200
    assert exported.headers["Cache-Control"] == "no-store"
    assert hashlib.sha256(exported.content).hexdigest() == ready["export_sha256"]
    assert "message 0" in exported.text
    page = requests.get(html_link, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html") and "message 2" in page.text
    token = json_link.rsplit("/", 1)[1].split("?")[0]
    forged = json_link.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert requests.get(forged, timeout=10).status_code == 404
    assert world.sandbox.org.call_count("entries") == 1

    erasure = officer.post(
        "/v1/erasure-requests", {k: v for k, v in body.items() if k != "reference"}
    )
    assert erasure.status_code == 202
    erasure_id = uuid.UUID(erasure.json()["id"])
    wait_for("the erasure", lambda: world.status(erasure_id) is RequestStatus.COMPLETED)
    # One delete call, sent once the window the read opened had passed: none spent on a 412.
    assert world.sandbox.org.call_count("delete_participants") == 1
    with world.session() as session:
        (call,) = session.scalars(select(DeleteCall).where(DeleteCall.org_id == world.org_id))
        windows = session.scalars(
            select(ConversationActivity.active_until).where(
                ConversationActivity.org_id == world.org_id
            )
        ).all()
    assert windows and call.sent_at >= max(windows)


CANARY_PHONE = "+14155557391"
CANARY_TEXT = "canary-entry-text-5d1f0c"


def test_entry_content_and_identifiers_never_reach_logs_leaves_or_task_messages(
    world: World,
    officer: Officer,
    make_worker: Callable[..., Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with world.sandbox.org.lock:
        seeded = add_end_user(
            world.sandbox.org.data, platform_key=CANARY_PHONE, phone=CANARY_PHONE, entries=2
        )
        for entries in (world.sandbox.org.data.entries[c] for c in seeded.conversation_ids):
            for entry in entries:
                entry["entryPayload"]["abstractMessage"]["staticContent"]["text"] = CANARY_TEXT
    worker = make_worker(extra_env={"ERASURE_LOG_LEVEL": "DEBUG"})
    created = officer.post(
        "/v1/access-requests",
        {"subject": {"phone": CANARY_PHONE}, "regulation": "ccpa", "org": world.org_name},
    )
    access_id = uuid.UUID(created.json()["id"])
    ready = wait_for(
        "the export",
        lambda: (
            (r := officer.get(f"/v1/access-requests/{access_id}").json())["status"] == "ready" and r
        ),
    )
    assert ready["entries"] == 2
    needles = [CANARY_TEXT, CANARY_PHONE, CANARY_PHONE.lstrip("+"), seeded.end_user_id]
    needles += list(seeded.conversation_ids)
    with world.session() as session:
        leaves = session.scalars(
            select(AuditLeaf.leaf).where(AuditLeaf.request_id == access_id)
        ).all()
        messages = session.scalars(select(OutboxMessage.args)).all()
        stored = session.get_one(AccessRequest, access_id)
        sealed = [stored.export_ciphertext or b""]
    places = {
        "worker log": worker.log_path.read_text(errors="replace"),
        "app log": caplog.text,
        "audit leaves": b"\n".join(leaves).decode(),
        "task messages": json.dumps(messages),
        "responses": json.dumps([created.json(), ready]),
    }
    assert len(leaves) >= 3
    assert "erasure.retrieve_access" in places["worker log"]  # the worker did log its work
    for where, text in places.items():
        for needle in needles:
            assert needle not in text, (where, needle)
    assert all(CANARY_TEXT.encode() not in blob for blob in sealed)  # encrypted at rest
