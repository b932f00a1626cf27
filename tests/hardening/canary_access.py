"""The canary run's access-request entry points: OpenDSR's `access` type, an access ticket by
webhook, and the console's form and access page, each answer kept to be scanned. Email-only
subjects: nothing in the sandbox matches them, so retrieval ends with no data and no erasure of
the run waits on an activity window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from erasure.accounts.models import User
from erasure.db import make_sessionmaker
from tests.hardening.canary_entry_points import POSITIVE, Keys, Run, bearer, email, text_canary
from tests.support.console import sign_in
from tests.support.senders import SENDERS, dumps


def access_entry_points(
    run: Run, client: FlaskClient, keys: Keys, org: str, console: FlaskClient, engine: Engine
) -> None:
    srid = f"dsr-access-{POSITIVE}"
    body = {
        "api_version": "2.0",
        "subject_request_id": srid,
        "subject_request_type": "access",
        "subject_identities": [
            {"identity_type": "email", "identity_value": email("opendsr-access")}
        ],
    }
    controller = bearer(keys.integration)
    run.keep(
        "opendsr access create",
        client.post("/opendsr/v2/requests", json=body, headers=controller),
        expect=201,
    )
    run.keep(
        "opendsr access status",
        client.get(f"/opendsr/v2/requests/{srid}", headers=controller),
        expect=200,
    )

    sender = SENDERS["standard"]
    source = run.keep(
        "webhook source access",
        client.post(
            "/v1/webhook-sources",
            json={"name": "canary-access", "system": sender.system.value, "org": org},
            headers=bearer(keys.admin),
        ),
        expect=201,
    ).get_json()
    at = datetime.now(UTC)
    raw = dumps(
        sender.payload(email=email("webhook-access"), ticket=f"T-{POSITIVE}-access", access=True)
    )
    headers = sender.sign(raw, secret=source["secret"], at=at, delivery_id=str(uuid.uuid4()))
    delivered = run.keep(
        "webhook access",
        client.post("/v1/webhooks/canary-access", data=raw, headers=headers),
        expect=202,
    )
    assert delivered.get_json()["access_request_id"], delivered.get_json()

    with make_sessionmaker(engine)() as session:
        officer = session.scalar(select(User).where(User.email == "staff-officer@example.com"))
        assert officer is not None
        token = sign_in(console, officer)
    form = {
        "csrf_token": token,
        "request_type": "access",
        "email": email("console-access"),
        "regulation": "gdpr",
        "org": org,
        "notes": text_canary("console-access-notes"),
    }
    created = run.keep(
        "console access new", console.post("/ui/requests/new", data=form), expect=302
    )
    run.keep("console access page", console.get(created.headers["Location"]), expect=200)
