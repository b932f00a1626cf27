"""Callbacks: a subscription made through the API, a request submitted, the dispatcher and sender
run until nothing is due, and a cursor past what other tests left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.deliveries import sending
from erasure.integrations import callbacks
from erasure.integrations.models import IntegrationCursor

PHONE = "+14155552671"
EMAIL = "canary.subject@example.com"
LINKS = callbacks.Links("https://erasure.test")


@pytest.fixture
def cursor_at_end(db_session: Session) -> None:
    """Start the dispatcher after everything other tests left in this database."""
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    db_session.flush()


def submit_request(client: FlaskClient, headers: dict[str, str]) -> str:
    body = {
        "subject": {"phone": PHONE, "email": EMAIL},
        "regulation": "gdpr",
        "reference": {"system": "crm", "id": "T-1"},
    }
    response = client.post("/v1/erasure-requests", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def subscribe(client: FlaskClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    response = client.post("/v1/callback-subscriptions", json={"url": url}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def drain(db_session: Session, senders: callbacks.Senders, now: datetime | None = None) -> int:
    sent = 0
    while sending.send_next(db_session, senders, now=now):
        sent += 1
    return sent
