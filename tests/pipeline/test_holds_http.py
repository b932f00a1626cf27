"""Legal holds end to end: the API over real HTTP, a real Celery worker (with beat) on a private
Redis, the test database and the Salesforce sandbox. An approver holds a subject; that subject's
erasure stops before deletion and says why; a request of another subject goes through meanwhile;
the release lets it finish, and its certificate (which says it waited) verifies offline with the
CLI's verifier."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import Engine, delete, select

from erasure.accounts.models import ApiKey, Role
from erasure.api_keys import create_api_key
from erasure.audit import store
from erasure.audit.checkpoint import SigningKey
from erasure.audit.commands import audit_group
from erasure.core.models import ErasureRequest
from erasure.db import make_sessionmaker
from erasure.pipeline.holds import ON_HOLD_ALERT
from erasure.pipeline.models import Alert
from tests.conftest import LiveServer
from tests.pipeline.conftest import World
from tests.pipeline.harness import Worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]

PHONE = "+14155550013"
OTHER = "+14155550001"
REASON = "Litigation hold: Ana Example v. Company, matter 2026-77"
TIMEOUT_S = 90.0


@dataclass
class Keys:
    approver: dict[str, str]
    officer: dict[str, str]


@pytest.fixture
def keys(engine: Engine) -> Iterator[Keys]:
    maker = make_sessionmaker(engine)
    with maker() as session:
        approver = create_api_key(session, name="holds approver", role=Role.APPROVER)
        officer = create_api_key(session, name="holds officer", role=Role.OFFICER)
        session.commit()
        ids = [approver.record.id, officer.record.id]
    yield Keys(
        approver={"Authorization": f"Bearer {approver.secret}"},
        officer={"Authorization": f"Bearer {officer.secret}"},
    )
    with maker() as session:
        session.execute(delete(ErasureRequest).where(ErasureRequest.api_key_id.in_(ids)))
        session.execute(delete(ApiKey).where(ApiKey.id.in_(ids)))
        session.commit()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)  # polling a condition, not waiting for time


def _get(live: LiveServer, path: str, headers: dict[str, str]) -> Any:
    response = requests.get(f"{live.url}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _status(live: LiveServer, request_id: str, headers: dict[str, str]) -> str:
    return str(_get(live, f"/v1/erasure-requests/{request_id}", headers)["status"])


def test_a_hold_stops_an_erasure_through_http_and_a_real_worker_until_released(
    keys: Keys,
    world: World,
    make_worker: Callable[..., Worker],
    live_server: LiveServer,
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    make_worker()
    base = live_server.url
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    hold_body = {
        "scope": "subject",
        "subject": {"phone": PHONE},
        "org": world.org_name,
        "reason": REASON,
        "ends_at": ends_at,
    }
    refused = requests.post(f"{base}/v1/holds", json=hold_body, headers=keys.officer, timeout=10)
    assert refused.status_code == 403
    placed = requests.post(f"{base}/v1/holds", json=hold_body, headers=keys.approver, timeout=10)
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["state"] == "active"
    assert hold["subject_kind"] == "phone"
    assert PHONE not in placed.text

    def submit(phone: str) -> str:
        response = requests.post(
            f"{base}/v1/erasure-requests",
            json={"subject": {"phone": phone}, "regulation": "gdpr", "org": world.org_name},
            headers=keys.officer,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    held = submit(PHONE)
    other = submit(OTHER)
    _wait(lambda: _status(live_server, held, keys.officer) == "on_hold", "the hold to stop it")
    # The other subject's request is deleted meanwhile: dispatch passes have run since.
    _wait(lambda: _status(live_server, other, keys.officer) == "completed", "the other request")

    shown = _get(live_server, f"/v1/erasure-requests/{held}", keys.officer)
    assert shown["status"] == "on_hold"
    assert [h["id"] for h in shown["legal_holds"]] == [hold["id"]]
    assert shown["links"]["override_hold"].endswith(f"/v1/erasure-requests/{held}/override-hold")
    assert len(world.sandbox.org.accepted_ids["delete_participants"]) == 1  # the other's only
    with world.session() as session:
        alert = session.scalar(
            select(Alert).where(Alert.request_id == uuid.UUID(held), Alert.kind == ON_HOLD_ALERT)
        )
    assert alert is not None
    assert alert.resolved_at is None
    one = _get(live_server, f"/v1/holds/{hold['id']}", keys.approver)
    assert one["held_requests"] == [held]
    assert one["reason"] == REASON
    listed = _get(live_server, "/v1/holds?active=true", keys.approver)
    assert hold["id"] in [item["id"] for item in listed["items"]]
    assert (
        requests.post(
            f"{base}/v1/erasure-requests/{held}/override-hold",
            json={"reason": "not allowed"},
            headers=keys.officer,
            timeout=10,
        ).status_code
        == 403
    )

    released = requests.post(
        f"{base}/v1/holds/{hold['id']}/release", json={}, headers=keys.approver, timeout=10
    )
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "released"
    again = requests.post(
        f"{base}/v1/holds/{hold['id']}/release", json={}, headers=keys.approver, timeout=10
    )
    assert again.status_code == 409
    _wait(lambda: _status(live_server, held, keys.officer) == "completed", "the resumed request")
    assert len(world.sandbox.org.accepted_ids["delete_participants"]) == 2

    # The certificate says it waited, and verifies offline. The worker's sequencer orders the
    # leaves (ours may find it holding the lock); this process signs checkpoints with the key.
    fetched: list[requests.Response] = []

    def certificate_issued() -> bool:
        with world.session() as session:
            store.sequence(session)
            store.sign_checkpoint(session, signing_key)
            session.commit()
        fetched.append(
            requests.get(
                f"{base}/v1/erasure-requests/{held}/certificate", headers=keys.officer, timeout=10
            )
        )
        return fetched[-1].status_code != 409

    _wait(certificate_issued, "the certificate's leaves to be checkpointed")
    response = fetched[-1]
    assert response.status_code == 200, response.text
    certificate = response.json()
    [waited] = certificate["request"]["legal_holds"]
    assert waited["holds"] == [hold["id"]]
    assert waited["how"] == "hold_ended"
    kinds = [entry["leaf"]["kind"] for entry in certificate["leaves"]]
    assert "request.held" in kinds
    assert "request.resumed" in kinds
    assert PHONE not in response.text
    assert "Ana" not in response.text
    path = tmp_path / "certificate.json"
    path.write_bytes(response.content)
    verified = CliRunner().invoke(
        audit_group, ["verify", str(path), "--public-key", str(signing_key.verifier())]
    )
    assert verified.exit_code == 0, verified.output
