"""Notices mailed end to end: an officer extends a request of a subject who gave an email address;
the extension notice goes through the outbox, the broker and a real `celery worker --beat` to a
real SMTP server on 127.0.0.1. The server is down at first: the worker tries again, and the mail
arrives once it is up. The address and the text appear in the mail only: not in the worker's
log, the broker's traffic, the outbox or the audit leaves."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.db import make_sessionmaker
from erasure.lifecycle import operations
from erasure.notices import issuing
from erasure.notices.models import Notice, NoticeDelivery, NoticeKind
from erasure.orgs import add_org
from erasure.outbox.models import OutboxMessage
from erasure.pipeline.context import utcnow
from erasure.workflow import Protection
from tests.hardening.canary_places import RedisMonitor, expand
from tests.notices.smtp_server import SmtpServer
from tests.notices.support import EMAIL, REASON, submit
from tests.pipeline.conftest import cleanup_org
from tests.pipeline.harness import RedisServer, Worker, free_port, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.slow]

SENDER = "privacy@erasure.test"


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def org_name(engine: Engine) -> Iterator[str]:
    """A committed org whose Salesforce is a closed local port (the pipeline fails fast), and
    everything of it removed afterwards."""
    maker = make_sessionmaker(engine)
    with maker() as session, session.begin():
        org = add_org(
            session, name=f"mail-{uuid.uuid4().hex[:8]}", my_domain_url="https://127.0.0.1:9"
        )
        org_id, name = org.id, org.name
    yield name
    cleanup_org(maker, org_id)


def test_extension_notice_is_mailed_by_a_worker_after_the_server_comes_back(
    settings: Settings,
    database_url: str,
    engine: Engine,
    protection: Protection,
    tmp_path: Path,
    org_name: str,
) -> None:
    maker: Callable[[], Session] = make_sessionmaker(engine)
    with maker() as session, session.begin():
        request = submit(session, protection, org_name)
        request_id = request.id
        operations.extend(
            session,
            request_id,
            reason=REASON,
            until=None,
            vault=protection.vault,
            by="user:test",
            at=utcnow(),
        )
        issuing.issue_on_demand(
            session,
            request_id,
            NoticeKind.ACKNOWLEDGEMENT,
            vault=protection.vault,
            at=utcnow(),
            by="user:test",
        )

    smtp_port = free_port()  # nothing listens there yet
    smtp = SmtpServer(smtp_port)
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    monitor = RedisMonitor(redis_server)
    env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
    env |= {
        "ERASURE_SMTP_HOST": "127.0.0.1",
        "ERASURE_SMTP_PORT": str(smtp_port),
        "ERASURE_SMTP_SECURITY": "none",
        "ERASURE_SMTP_FROM": SENDER,
        "ERASURE_SMTP_TIMEOUT_S": "5",
        "ERASURE_NOTICE_RETRY_S": "0.5",
        "ERASURE_LOG_LEVEL": "DEBUG",
        "ERASURE_LOG_TASK_EVENTS": "true",
    }
    worker = Worker(env, tmp_path)
    smtp_started = False

    def notices() -> list[Notice]:
        with maker() as session:
            return list(session.scalars(select(Notice).where(Notice.request_id == request_id)))

    try:
        worker.start()
        # Both notices were tried and found the server down; they wait to be tried again.
        _poll(lambda: all(n.attempts >= 1 for n in notices()), 90, "a first, failed attempt")
        assert all(n.delivery is NoticeDelivery.QUEUED for n in notices())
        assert {n.last_error for n in notices()} == {"the SMTP server could not be reached"}
        smtp.start()
        smtp_started = True
        _poll(lambda: len(smtp.inbox.messages()) >= 2, 90, "both mails")
        _poll(
            lambda: all(n.delivery is NoticeDelivery.SENT for n in notices()),
            30,
            "rows marked sent",
        )
    finally:
        worker.stop()
        traffic = expand(monitor.stop())
        redis_server.stop()
        if smtp_started:
            smtp.stop()
    _check_what_was_sent_and_where(maker, request_id, smtp, traffic, worker)


def _check_what_was_sent_and_where(
    maker: Callable[[], Session],
    request_id: uuid.UUID,
    smtp: SmtpServer,
    traffic: str,
    worker: Worker,
) -> None:
    def notices() -> list[Notice]:
        with maker() as session:
            return list(session.scalars(select(Notice).where(Notice.request_id == request_id)))

    mails = {m.message["Subject"]: m for m in smtp.inbox.messages()}
    assert len(mails) == 2, "each notice mailed once"
    extension = next(m for s, m in mails.items() if s.startswith("We need more time"))
    assert extension.recipients == [EMAIL] and extension.sender == SENDER
    assert extension.message["To"] == EMAIL
    body = extension.message.get_content()
    assert REASON in body and "PRIV-77" in extension.message["Subject"]

    with maker() as session:
        leaves = session.scalars(select(AuditLeaf).where(AuditLeaf.request_id == request_id)).all()
        sent = [leaf.leaf.decode() for leaf in leaves if leaf.kind == "notice.sent"]
        assert len(sent) == 2
        by_id = {str(n.id): n for n in notices()}
        for text in sent:
            assert any(nid in text and n.template_version in text for nid, n in by_id.items())
        outbox_args = [
            m.args
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.task_name == "erasure.send_notice")
            )
            if m.args and m.args[0] in by_id
        ]
        assert sorted(outbox_args) == sorted([[nid] for nid in by_id])
        leaf_text = "\n".join(leaf.leaf.decode() for leaf in leaves)

    log = worker.log_path.read_text(errors="replace")
    assert "mailed" in log, "the worker's log says what it did"
    # Privacy canary: the address, the reason and the letter only ever travel in the mail.
    for where, haystack in (("worker log", log), ("broker", traffic), ("leaves", leaf_text)):
        for needle in (EMAIL, EMAIL.split("@")[0], REASON, "canary reason", "We need more time"):
            assert needle not in haystack, f"{needle!r} leaked into the {where}"
