"""One mail attempt against a real SMTP server on 127.0.0.1 (the worker's transaction, run here):
a server that refuses the mailbox fails the notice at once with a reason that quotes neither the
address nor the server's text; no server configured makes it download-only; settings that would
mail from nobody, or in the clear to another host in production, are refused."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.config import Settings, SmtpSecurity
from erasure.core.models import Org
from erasure.notices import issuing, mail
from erasure.notices.models import NoticeDelivery, NoticeKind
from erasure.workflow import Protection
from tests.notices.smtp_server import RefusingInbox, SmtpServer
from tests.notices.support import EMAIL, submit
from tests.pipeline.harness import free_port

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def refusing() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), RefusingInbox())
    server.start()
    yield server
    server.stop()


def test_a_refused_mailbox_fails_the_notice_without_quoting_the_server(
    db_session: Session, org: Org, protection: Protection, refusing: SmtpServer
) -> None:
    request = submit(db_session, protection, org.name)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    server = mail.SmtpServer(
        host="127.0.0.1", port=refusing.port, security=SmtpSecurity.NONE, sender="p@erasure.test"
    )
    outcome = mail.deliver(
        db_session, notice.id, server=server, vault=protection.vault, at=AT, last_try=False
    )
    assert outcome is mail.Outcome.FAILED  # a 5xx is final, whatever tries are left
    assert notice.delivery is NoticeDelivery.FAILED and notice.attempts == 1
    assert notice.last_error == "the SMTP server refused the mail (550)"
    failed = db_session.scalars(
        select(AuditLeaf).where(
            AuditLeaf.request_id == request.id, AuditLeaf.kind == "notice.failed"
        )
    ).one()
    assert EMAIL not in failed.leaf.decode() and "mailbox" not in failed.leaf.decode()
    # A redelivered message finds nothing left to do.
    assert (
        mail.deliver(
            db_session, notice.id, server=server, vault=protection.vault, at=AT, last_try=False
        )
        is mail.Outcome.SKIPPED
    )


def test_without_a_server_a_queued_notice_becomes_download_only(
    db_session: Session, org: Org, protection: Protection
) -> None:
    request = submit(db_session, protection, org.name)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    assert notice.delivery is NoticeDelivery.QUEUED
    outcome = mail.deliver(
        db_session, notice.id, server=None, vault=protection.vault, at=AT, last_try=False
    )
    assert outcome is mail.Outcome.SKIPPED
    assert notice.delivery is NoticeDelivery.DOWNLOAD_ONLY and notice.attempts == 0


def _settings(**values: object) -> Settings:
    key = base64.b64encode(os.urandom(32)).decode()
    return Settings.model_validate(
        {
            "database_url": "postgresql+psycopg://u@db/erasure",
            "encryption_keys": f"k:{key}",
            "pseudonym_key": key,
            **values,
        }
    )


def test_smtp_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="smtp_from"):
        _settings(smtp_host="mail.example.com")
    with pytest.raises(ValidationError, match="smtp_security none"):
        _settings(smtp_host="mail.example.com", smtp_from="p@example.com", smtp_security="none")
    local = _settings(smtp_host="127.0.0.1", smtp_from="p@example.com", smtp_security="none")
    assert mail.SmtpServer.from_settings(local) is not None
    secret = _settings(
        smtp_host="mail.example.com", smtp_from="p@example.com", smtp_password="hunter2-smtp"
    )
    assert "hunter2-smtp" not in repr(secret) and "hunter2-smtp" not in repr(
        mail.SmtpServer.from_settings(secret)
    )
    assert mail.SmtpServer.from_settings(_settings()) is None


def test_a_notice_whose_message_was_lost_is_published_again(
    db_session: Session, org: Org, protection: Protection
) -> None:
    from datetime import timedelta

    from erasure import task_names
    from erasure.outbox.models import OutboxMessage

    request = submit(db_session, protection, org.name)
    lost, fresh = (
        issuing.issue_on_demand(
            db_session,
            request.id,
            NoticeKind.ACKNOWLEDGEMENT,
            vault=protection.vault,
            at=at,
            by=None,
        )
        for at in (AT - timedelta(minutes=30), AT)
    )

    def published(notice_id: object) -> int:
        return len(
            db_session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.task_name == task_names.SEND_NOTICE,
                    OutboxMessage.args == [str(notice_id)],
                )
            ).all()
        )

    assert (published(lost.id), published(fresh.id)) == (1, 1)
    assert mail.republish_stalled(db_session, now=AT) == 1
    assert (published(lost.id), published(fresh.id)) == (2, 1)
    assert lost.next_attempt_at == AT
    assert mail.republish_stalled(db_session, now=AT) == 0  # not again until it stalls again
