"""An access request at intake: submit (the erasure request's subject, org, deadline and audit
rules, through the same functions) and read. Nothing here commits; framework-free."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import deadlines, task_names, workflow
from erasure.access.models import AccessIdentifier, AccessRequest, AccessStatus
from erasure.audit import leaves
from erasure.errors import NotFound
from erasure.free_text import notes_context
from erasure.outbox import messages as outbox


def submit_access(
    session: Session,
    submission: workflow.Submission,
    *,
    protection: workflow.Protection,
    default_org: str | None,
) -> AccessRequest:
    """Record a new access request, its sealed identifiers and its audit leaf, and ask a worker
    to retrieve it. Raises UnknownOrg. An open erasure for the same subject is not linked: the
    two are carried out side by side, erasure first (erasure.access.retrieve)."""
    if not submission.identifiers:
        raise ValueError("a submission needs at least one identifier")
    org = workflow.resolve_org(session, submission.org, default_org=default_org)
    now = datetime.now(UTC)
    received_at = submission.received_at or now
    request_id = uuid.uuid4()
    subject = workflow.seal_subject(protection, request_id, submission.identifiers)
    access = AccessRequest(
        id=request_id,
        org_id=org.id,
        source=submission.source,
        reference_system=submission.reference_system,
        reference_id=submission.reference_id,
        reference_url=submission.reference_url,
        regulation=submission.regulation,
        received_at=received_at,
        due_at=deadlines.due_at(submission.regulation, received_at),
        status=AccessStatus.RECEIVED,
        api_key_id=submission.api_key_id,
        created_at=now,
        updated_at=now,
    )
    if submission.notes:
        sealed = protection.vault.seal(submission.notes, context=notes_context(request_id))
        access.notes_ciphertext, access.notes_key_id = sealed.ciphertext, sealed.key_id
    session.add(access)
    session.flush()  # the request row before its identifiers (foreign key)
    session.add_all(
        AccessIdentifier(
            request_id=request_id,
            kind=item.kind,
            blind_index=item.blind_index,
            ciphertext=item.sealed.ciphertext,
            key_id=item.sealed.key_id,
        )
        for item in subject
    )
    leaves.append(
        session,
        kind="access.received",
        request_id=request_id,
        at=now,
        data={
            "org": org.name,
            "source": submission.source.value,
            "regulation": submission.regulation.value,
            "received_at": leaves.timestamp(received_at),
            "due_at": leaves.timestamp(access.due_at),
            "subject": workflow.subject_leaf(subject),
            "reference": {"system": submission.reference_system, "id": submission.reference_id},
            "submitted_by": submission.submitted_by,
        },
    )
    outbox.enqueue(session, task_names.RETRIEVE_ACCESS, [])
    session.flush()
    return access


def get_access(
    session: Session, request_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
) -> AccessRequest:
    """One access request; NotFound if absent or not visible to this integration."""
    query = select(AccessRequest).where(AccessRequest.id == request_id)
    if api_key_id is not None:
        query = query.where(AccessRequest.api_key_id == api_key_id)
    access = session.scalar(query)
    if access is None:
        raise NotFound("no such access request")
    return access
