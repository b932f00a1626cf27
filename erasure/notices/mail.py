"""Mailing a queued notice over SMTP: the only place the subject's address is decrypted, and only
for as long as the SMTP conversation takes.

One transaction per attempt: the notice row is locked (SKIP LOCKED, so a redelivered message
finds it taken and leaves), the address and the text are opened, the server is spoken to, and
the outcome recorded with its leaf. A worker killed after the server accepted the mail but before
the commit mails it again (at least once, like every delivery here). Nothing is logged or stored
about a failure but a fixed phrase and the SMTP code: servers quote the recipient in their errors.
Nothing here commits.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.audit import leaves
from erasure.config import Settings, SmtpSecurity
from erasure.core.models import IdentifierKind, SubjectIdentifier
from erasure.identifiers import Sealed, Vault, identifier_context
from erasure.notices import issuing
from erasure.notices.models import Notice, NoticeDelivery
from erasure.outbox import messages as outbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: SmtpSecurity
    sender: str
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpServer | None:
        """The configured server, or None when notices are download-only."""
        if not settings.smtp_host or not settings.smtp_from:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
        )


class Outcome(StrEnum):
    SENT = "sent"
    #: A passing failure: try again later.
    RETRY = "retry"
    FAILED = "failed"
    #: Not ours to send: already sent, taken by another worker, or download-only.
    SKIPPED = "skipped"


class SendFailure(Exception):
    """Why the server did not take the mail: a fixed phrase, and whether trying again may help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def _message(server: SmtpServer, to: str, subject: str, body: str, at: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = server.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=server.sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _connect(server: SmtpServer) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if server.security is SmtpSecurity.TLS:
        return smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout_s, context=context)
    connection = smtplib.SMTP(server.host, server.port, timeout=server.timeout_s)
    if server.security is SmtpSecurity.STARTTLS:
        connection.starttls(context=context)
    return connection


def _classify(exc: Exception) -> SendFailure:
    """A fixed phrase per failure: an exception's text may quote the recipient."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({answer[0] for answer in exc.recipients.values()})
        code = codes[0] if codes else None
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendFailure(f"the SMTP server refused the login ({code})", permanent=False)
    if isinstance(code, int) and 500 <= code < 600:
        return SendFailure(f"the SMTP server refused the mail ({code})", permanent=True)
    if isinstance(code, int):
        return SendFailure(f"the SMTP server deferred the mail ({code})", permanent=False)
    if isinstance(exc, ssl.SSLError):
        return SendFailure("TLS with the SMTP server failed", permanent=False)
    return SendFailure("the SMTP server could not be reached", permanent=False)


def send(server: SmtpServer, message: EmailMessage) -> None:
    """One SMTP conversation. Raises SendFailure."""
    try:
        with _connect(server) as connection:
            if server.username:
                password = server.password.get_secret_value() if server.password else ""
                connection.login(server.username, password)
            connection.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc) from None


def _recipient(session: Session, vault: Vault, request_id: uuid.UUID) -> str | None:
    identifier = session.scalar(
        select(SubjectIdentifier)
        .where(
            SubjectIdentifier.request_id == request_id,
            SubjectIdentifier.kind == IdentifierKind.EMAIL,
            SubjectIdentifier.ciphertext.is_not(None),
        )
        .order_by(SubjectIdentifier.id)
        .limit(1)
    )
    if identifier is None or identifier.ciphertext is None or identifier.key_id is None:
        return None
    return vault.open(
        Sealed(identifier.key_id, identifier.ciphertext),
        context=identifier_context(request_id, IdentifierKind.EMAIL),
    )


def _leaf(session: Session, notice: Notice, kind: str, at: datetime, **data: str | int) -> None:
    leaves.append(
        session,
        kind=kind,
        request_id=notice.request_id,
        at=at,
        data={
            "notice_id": str(notice.id),
            "notice_kind": notice.kind.value,
            "template_version": notice.template_version,
            **data,
        },
    )


def deliver(
    session: Session,
    notice_id: uuid.UUID,
    *,
    server: SmtpServer | None,
    vault: Vault,
    at: datetime,
    last_try: bool,
    retry_in: timedelta = timedelta(0),
) -> Outcome:
    """Mail one queued notice. `last_try`: a passing failure fails the notice instead of asking
    for another try, which the caller makes `retry_in` from now."""
    notice = session.scalar(
        select(Notice).where(Notice.id == notice_id).with_for_update(skip_locked=True)
    )
    if notice is None or notice.delivery is not NoticeDelivery.QUEUED:
        return Outcome.SKIPPED
    text = issuing.open_text(vault, notice)
    to = _recipient(session, vault, notice.request_id) if text is not None else None
    if server is None or text is None or to is None:
        # No server (notices are download-only), or retention destroyed the address meanwhile.
        notice.delivery = NoticeDelivery.DOWNLOAD_ONLY
        notice.next_attempt_at = None
        notice.last_error = (
            "no SMTP server is configured" if server is None else "the address is gone"
        )
        return Outcome.SKIPPED
    notice.attempts += 1
    try:
        send(server, _message(server, to, text.subject, text.body, at))
    except SendFailure as failure:
        notice.last_error = failure.reason
        if failure.permanent or last_try:
            notice.delivery = NoticeDelivery.FAILED
            notice.next_attempt_at = None
            _leaf(session, notice, "notice.failed", at, attempts=notice.attempts)
            logger.warning("notice %s not mailed: %s", notice.id, failure.reason)
            return Outcome.FAILED
        notice.next_attempt_at = at + retry_in
        logger.info("notice %s: %s; will try again", notice.id, failure.reason)
        return Outcome.RETRY
    notice.delivery = NoticeDelivery.SENT
    notice.next_attempt_at = None
    notice.sent_at = at
    notice.last_error = None
    _leaf(session, notice, "notice.sent", at, attempts=notice.attempts)
    logger.info("notice %s mailed", notice.id)
    return Outcome.SENT


#: A queued notice not tried this long after it was due lost its message (a broker flushed or
#: restarted without persistence): the sweep publishes it again.
STALLED_AFTER = timedelta(minutes=5)


def republish_stalled(session: Session, *, now: datetime, limit: int = 200) -> int:
    """Queue again the notices whose mail message was lost; returns how many. A message that
    was only late finds the notice taken or sent (SKIP LOCKED, state check). Does not commit."""
    stalled = session.scalars(
        select(Notice)
        .where(
            Notice.delivery == NoticeDelivery.QUEUED,
            Notice.next_attempt_at < now - STALLED_AFTER,
        )
        .order_by(Notice.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for notice in stalled:
        notice.next_attempt_at = now
        outbox.enqueue(session, task_names.SEND_NOTICE, [str(notice.id)])
    return len(stalled)
