"""Access requests opened by ticketing webhooks (erasure.integrations.deliveries calls this
through its AccessIntake protocol): one access request per ticket of a source."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.access.intake import submit_access
from erasure.access.models import AccessRequest
from erasure.integrations.models import WebhookSource


class TicketAccess:
    def earlier(self, session: Session, source: WebhookSource, ticket_id: str) -> uuid.UUID | None:
        # A source's tickets are told apart by its key and system, as its requests are stored
        # (access requests keep no source row: a ticket system's ids are unique within it).
        return session.scalar(
            select(AccessRequest.id).where(
                AccessRequest.source == source.system,
                AccessRequest.reference_system == source.system.value,
                AccessRequest.reference_id == ticket_id,
                AccessRequest.api_key_id == source.api_key_id,
            )
        )

    def submit(
        self,
        session: Session,
        submission: workflow.Submission,
        *,
        protection: workflow.Protection,
        default_org: str | None,
    ) -> uuid.UUID:
        return submit_access(session, submission, protection=protection, default_org=default_org).id
