"""Notices in the domain: templates render in a sandbox, an extension makes its notice with the
reason, the text is sealed and downloadable, the leaf names the template version and never the
text, and only a request with an email address queues a mail (its id alone in the outbox)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.core.models import Org, RequestStatus
from erasure.errors import InvalidTransition
from erasure.identifiers import Vault
from erasure.key_rotation import reencrypt_batch
from erasure.lifecycle import operations
from erasure.notices import issuing, templates
from erasure.notices.models import Notice, NoticeDelivery, NoticeKind
from erasure.outbox.models import OutboxMessage
from erasure.workflow import Protection
from tests.notices.support import EMAIL, REASON, submit

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _leaves(session: Session, request_id: object) -> list[AuditLeaf]:
    return list(
        session.scalars(
            select(AuditLeaf).where(AuditLeaf.request_id == request_id).order_by(AuditLeaf.id)
        )
    )


def test_extension_makes_a_sealed_notice_with_the_reason_and_queues_its_mail(
    db_session: Session, org: Org, protection: Protection
) -> None:
    request = submit(db_session, protection, org.name)
    previous_due = request.due_at
    operations.extend(
        db_session,
        request.id,
        reason=REASON,
        until=None,
        vault=protection.vault,
        by="user:x",
        at=AT,
    )
    (notice,) = issuing.for_request(db_session, request.id)
    assert notice.kind is NoticeKind.EXTENSION
    assert notice.delivery is NoticeDelivery.QUEUED
    assert notice.template_version == templates.default(NoticeKind.EXTENSION).version
    assert notice.text_ciphertext is not None and REASON.encode() not in notice.text_ciphertext

    text = issuing.open_text(protection.vault, notice)
    assert text is not None
    assert REASON in text.body
    assert "PRIV-77" in text.subject
    assert f"from {previous_due.day} {previous_due:%B %Y}" in text.body.replace("\n", " ")
    assert "2 November 2026" in text.body
    assert EMAIL not in text.body  # templates see dates and references, never identifiers

    generated = [
        leaf for leaf in _leaves(db_session, request.id) if leaf.kind == "notice.generated"
    ]
    assert len(generated) == 1
    leaf = generated[0].leaf.decode()
    assert str(notice.id) in leaf and notice.template_version in leaf and '"extension"' in leaf
    assert REASON not in leaf and EMAIL not in leaf and "Hello" not in leaf

    messages = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.task_name == task_names.SEND_NOTICE)
    ).all()
    assert [m.args for m in messages if m.args == [str(notice.id)]] == [[str(notice.id)]]


def test_a_request_without_an_email_gets_a_download_only_notice(
    db_session: Session, org: Org, protection: Protection
) -> None:
    request = submit(db_session, protection, org.name, email=None, reference=None)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    assert notice.delivery is NoticeDelivery.DOWNLOAD_ONLY
    assert not db_session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.task_name == task_names.SEND_NOTICE,
            OutboxMessage.args == [str(notice.id)],
        )
    ).all()
    text = issuing.open_text(protection.vault, notice)
    assert text is not None and str(request.id) in text.subject  # no ticket: the request id


def test_completion_letters_wait_for_completion_and_extensions_come_from_extending(
    db_session: Session, org: Org, protection: Protection
) -> None:
    request = submit(db_session, protection, org.name)
    with pytest.raises(InvalidTransition):
        issuing.issue_on_demand(
            db_session, request.id, NoticeKind.COMPLETION, vault=protection.vault, at=AT, by=None
        )
    with pytest.raises(InvalidTransition):
        issuing.issue_on_demand(
            db_session, request.id, NoticeKind.EXTENSION, vault=protection.vault, at=AT, by=None
        )
    request.status = RequestStatus.COMPLETED_NO_DATA
    request.completed_at = AT
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.COMPLETION, vault=protection.vault, at=AT, by=None
    )
    text = issuing.open_text(protection.vault, notice)
    assert text is not None
    assert "20 November 2026" in text.body and "found no personal data" in text.body


def test_an_edited_template_is_used_and_its_version_recorded(
    db_session: Session, org: Org, protection: Protection
) -> None:
    saved = templates.save(
        db_session,
        NoticeKind.ACKNOWLEDGEMENT,
        subject="Ref {{ reference }}",
        body="Due {{ due_on }} under {{ regulation }}.\n",
        by="user:admin",
    )
    assert not saved.is_default and saved.version != templates.default(saved.kind).version
    request = submit(db_session, protection, org.name)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    assert notice.template_version == saved.version
    text = issuing.open_text(protection.vault, notice)
    assert text is not None and text.subject == "Ref PRIV-77"
    assert text.body == "Due 2 December 2026 under GDPR.\n"
    assert templates.reset(db_session, NoticeKind.ACKNOWLEDGEMENT).is_default
    assert templates.current(db_session, NoticeKind.ACKNOWLEDGEMENT).is_default


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{{ reference }", "line 1"),
        ("{{ ''.__class__.__mro__ }}", "sandbox"),
        ("{{ 'x' * 100000000 }}", "sandbox"),
        ("{% for i in range(10**9) %}x{% endfor %}", "sandbox"),
        ("{{ subject_email }}", "undefined"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("a\x00b", "NUL"),
    ],
)
def test_templates_run_in_a_sandbox_and_mistakes_are_problems(
    db_session: Session, body: str, says: str
) -> None:
    with pytest.raises(templates.TemplateProblem) as caught:
        templates.save(db_session, NoticeKind.COMPLETION, subject="s", body=body, by=None)
    assert says in str(caught.value)
    assert caught.value.part == "body"
    assert db_session.get(templates.NoticeTemplate, NoticeKind.COMPLETION) is None


def test_a_subject_is_one_line(db_session: Session) -> None:
    with pytest.raises(templates.TemplateProblem) as caught:
        templates.save(db_session, NoticeKind.COMPLETION, subject="a\r\nBcc: x", body="b", by=None)
    assert caught.value.part == "subject"


def test_retention_destroys_a_notice_text(
    db_session: Session, org: Org, protection: Protection
) -> None:
    from datetime import timedelta

    from erasure.retention import shred_expired

    request = submit(db_session, protection, org.name)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    request.status = RequestStatus.CANCELLED
    request.completed_at = AT
    db_session.flush()
    assert shred_expired(db_session, retention=timedelta(days=1), now=AT + timedelta(days=2)) >= 1
    db_session.refresh(notice)
    assert notice.text_ciphertext is None
    assert issuing.open_text(protection.vault, notice) is None
    assert db_session.get(Notice, notice.id) is not None  # the record that it was made stays


def test_key_rotation_reseals_a_notice_text(
    db_session: Session, org: Org, protection: Protection, settings: Settings
) -> None:
    request = submit(db_session, protection, org.name)
    notice = issuing.issue_on_demand(
        db_session, request.id, NoticeKind.ACKNOWLEDGEMENT, vault=protection.vault, at=AT, by=None
    )
    before = issuing.open_text(protection.vault, notice)
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    while reencrypt_batch(db_session, rotated).total:
        pass
    db_session.refresh(notice)
    assert notice.text_key_id == "new"
    assert issuing.open_text(Vault({"new": new_key}), notice) == before  # old key not needed
