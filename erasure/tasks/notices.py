"""The notice mail task (deliveries queue): mail one queued notice to its data subject, trying
again with a doubling wait while the SMTP server is away. The message carries the notice's id
only; the address and the text are read from the database, sealed, at send time."""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import shared_task

from erasure import task_names
from erasure.celery_app import ErasureTask, relay_quietly
from erasure.identifiers import Vault
from erasure.notices import mail
from erasure.pipeline.context import utcnow

#: Tries after the first. With the default 60 s first wait, the last is about 15 minutes later.
MAX_RETRIES = 5
#: Below the broker's visibility timeout (erasure.celery_app): a message held back longer would
#: be handed out again while it waits.
MAX_WAIT_S = 240.0


@shared_task(  # type: ignore[untyped-decorator]
    name=task_names.SEND_NOTICE, base=ErasureTask, bind=True, acks_late=True, max_retries=None
)
def send_notice(self: ErasureTask, notice_id: str) -> str:
    """Mail one notice; returns what happened (sent, failed, skipped)."""
    settings = self.resources().settings
    tries = int(self.request.retries or 0)
    wait_s = min(MAX_WAIT_S, settings.notice_retry_s * 2**tries)
    with self.new_session() as session, session.begin():
        outcome = mail.deliver(
            session,
            uuid.UUID(notice_id),
            server=mail.SmtpServer.from_settings(settings),
            vault=Vault(settings.encryption_key_bytes),
            at=utcnow(),
            last_try=tries >= MAX_RETRIES,
            retry_in=timedelta(seconds=wait_s),
        )
    if outcome is mail.Outcome.RETRY:
        # No `exc`: Celery would log its text, and an SMTP error may quote the address.
        raise self.retry(countdown=wait_s)
    return outcome.value


@shared_task(name=task_names.SWEEP_NOTICES, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def sweep_notices(self: ErasureTask) -> int:
    """Publish again the notices whose mail message was lost; returns how many."""
    with self.new_session() as session, session.begin():
        count = mail.republish_stalled(session, now=utcnow())
    relay_quietly(self)
    return count
