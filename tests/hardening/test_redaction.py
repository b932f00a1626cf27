"""Redaction over the whole flow: a request submitted over HTTP, another from a signed ticketing
webhook, both carried through resolve, delete, confirm and completed against the HTTPS sandbox
(the pipeline driven in-process, as tests/pipeline/test_flow.py does), and a signed callback
delivered, all at DEBUG. No canary value (phone, e-mail, platform key, client secret, tokens, API
key, webhook and callback secrets) appears in any captured log record, raw (caplog on the root
logger at DEBUG) or as the JSON formatter writes it.

Records of the sandbox and of the local callback receiver (werkzeug's request lines) are left
out: they stand for Salesforce and a customer's server, not for this service's logs."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.audit.models import AuditLeaf
from erasure.core.models import RequestStatus, Source
from erasure.db import make_sessionmaker
from erasure.deliveries import sending
from erasure.integrations import callbacks, sources
from erasure.integrations.models import CallbackSubscription, IntegrationCursor, WebhookSource
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.observability.logs import configure_logging
from erasure.salesforce.sandbox import SandboxHandle
from tests.support.pipeline import APPS, World
from tests.support.receivers import receiver
from tests.support.senders import SENDERS, dumps

PHONE = "+14155550001"  # a demo web chat user: found by its contact's phone, then deleted
EMAIL = "redaction.canary@example.org"
WEBHOOK_EMAIL = "webhook.canary@example.net"
LOOPBACK = ("127.0.0.0/8", "::1/128")
OUTSIDE = ("werkzeug", "erasure.salesforce.sandbox", "tests.")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production handler (JSON formatter on the root logger) at DEBUG, removed after."""
    stream = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "urllib3", "requests_oauthlib")}
    configure_logging("DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler.get_name() == "erasure-json":
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _issued_tokens(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    tokens: list[str] = []
    authority = sandbox.org.authority
    issue = authority.issue

    def recording(*args: Any, **kwargs: Any) -> Any:
        body = issue(*args, **kwargs)
        tokens.append(body["access_token"])
        return body

    monkeypatch.setattr(authority, "issue", recording)
    return tokens


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_no_canary_in_any_log_line_of_the_whole_flow(
    make_world: Callable[..., World],
    engine: Engine,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    world = make_world()
    tokens = _issued_tokens(world.sandbox, monkeypatch)
    maker = make_sessionmaker(engine)
    settings = world.settings
    if "callback_allowed_networks" in type(settings).model_fields:
        settings = settings.model_copy(update={"callback_allowed_networks": LOOPBACK})
    app = create_app(settings, session_factory=maker)
    client = app.test_client()

    with maker() as session:
        officer = create_api_key(session, name="redaction officer", role=Role.OFFICER)
        integration = create_api_key(session, name="redaction integration", role=Role.INTEGRATION)
        source, webhook_secret = sources.create_source(
            session,
            name=f"jira-{uuid.uuid4().hex[:6]}",
            system=Source.JIRA,
            vault=world.ctx.vault,
            org=world.org_name,
        )
        last_leaf = session.scalar(select(func.max(AuditLeaf.id))) or 0
        session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last_leaf))
        session.commit()
        key_ids = [officer.record.id, integration.record.id]
        source_name = source.name
    secrets_seen: list[str] = [officer.secret, integration.secret, webhook_secret]
    try:
        with receiver() as hook:
            subscribed = client.post(
                "/v1/callback-subscriptions",
                json={"url": hook.url},
                headers={"Authorization": f"Bearer {integration.secret}"},
            )
            assert subscribed.status_code == 201, subscribed.get_json()
            secrets_seen.append(subscribed.get_json()["secret"])

            # 1. Intake over HTTP, by an integration (so its callbacks are owed) and an officer.
            created = client.post(
                "/v1/erasure-requests",
                json={
                    "subject": {"phone": PHONE, "email": EMAIL},
                    "regulation": "gdpr",
                    "org": world.org_name,
                },
                headers={"Authorization": f"Bearer {integration.secret}"},
            )
            assert created.status_code == 202, created.get_json()
            request_id = uuid.UUID(created.get_json()["id"])
            bad = client.post(
                "/v1/erasure-requests",
                json={"subject": {"phone": "+1415555000x"}, "regulation": "gdpr"},
                headers={"Authorization": f"Bearer {officer.secret}"},
            )
            assert bad.status_code == 422

            # 2. A signed Jira webhook delivery naming another subject.
            jira = SENDERS["jira"]
            at = datetime.now(UTC)
            body = dumps(jira.restamp(jira.payload(email=WEBHOOK_EMAIL, ticket="PRIV-42"), at))
            headers = jira.sign(body, secret=webhook_secret, at=at, delivery_id=str(uuid.uuid4()))
            delivered = client.post(f"/v1/webhooks/{source_name}", data=body, headers=headers)
            assert delivered.status_code == 202, delivered.get_json()

            # 3. Resolve, delete, confirm, complete against the HTTPS sandbox.
            world.wait_for([request_id])
            assert world.status(request_id) is RequestStatus.COMPLETED

            # 4. The callbacks owed for it, signed and sent to the subscriber.
            senders = callbacks.Senders(
                transport=RequestsTransport(
                    timeout_s=(2.0, 5.0), guard=AddressGuard.allowing(LOOPBACK)
                ),
                vault=world.ctx.vault,
                processor=ProcessorConfig.from_settings(settings),
            )
            with maker() as session:
                assert callbacks.dispatch(session, links=callbacks.Links("https://erasure.test"))
                session.commit()
            sent = 0
            with maker() as session:
                while sending.send_next(session, senders):
                    session.commit()
                    sent += 1
            assert sent >= 1 and hook.received
            assert client.get("/metrics").status_code == 200
    finally:
        with maker() as session:
            session.execute(
                delete(CallbackSubscription).where(CallbackSubscription.api_key_id.in_(key_ids))
            )
            session.execute(delete(WebhookSource).where(WebhookSource.name == source_name))
            session.commit()

    assert tokens, "the sandbox issued no token: the flow did not reach Salesforce"
    canaries = {
        "phone": PHONE.removeprefix("+"),
        "phone (national)": PHONE[2:],
        "email": EMAIL,
        "webhook email": WEBHOOK_EMAIL,
        "platform key": f"whatsapp:{PHONE}",
        "client secret": APPS[0][1],
        **{f"token {n}": token for n, token in enumerate(tokens)},
        **{f"secret {n}": secret for n, secret in enumerate(secrets_seen)},
    }
    ours = [r for r in caplog.records if not r.name.startswith(OUTSIDE)]
    assert any(r.name.startswith("erasure.") for r in ours)  # the flow did log
    raw = "\n".join(_record_text(record) for record in ours)
    formatted = json_log.getvalue()
    lines = [json.loads(line) for line in formatted.splitlines() if line.strip()]
    formatted_ours = "\n".join(
        json.dumps(line) for line in lines if not str(line.get("logger", "")).startswith(OUTSIDE)
    )
    assert formatted_ours
    for what, value in canaries.items():
        assert value not in raw, f"{what} in a raw log record"
        assert value not in formatted_ours, f"{what} in the JSON log output"
