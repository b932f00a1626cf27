"""An access request at intake: submit (the erasure request's subject, org, deadline and audit
rules, through the same functions) and read. Nothing here commits; framework-free."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session, make_transient_to_detached

from erasure import deadlines, task_names, workflow
from erasure.access.models import AccessRequest, AccessStatus
from erasure.audit import leaves
from erasure.core.new_request import OrgRef
from erasure.db import Insert, Send, insert_rows, insert_together, pipelined
from erasure.errors import NotFound
from erasure.free_text import notes_context
from erasure.outbox import messages as outbox

INSERT_ACCESS_SQL = (
    "INSERT INTO access_requests (id, org_id, source, reference_system, reference_id, "
    "reference_url, regulation, received_at, due_at, status, notes_ciphertext, notes_key_id, "
    "api_key_id, attempt, end_users, conversations, entries, created_at, updated_at) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 0, %s, %s)"
)
INSERT_ACCESS_IDENTIFIER_SQL = (
    "INSERT INTO access_identifiers (request_id, kind, blind_index, ciphertext, key_id) "
    "VALUES (%s, %s, %s, %s, %s)"
)


class PendingAccess:
    """An access request in two steps on a pipelined connection (`erasure.db.pipelined`), as
    `workflow.PendingSubmission` is for an erasure: creating it sends the org lookup; `write`
    reads it and sends the request, its sealed identifiers, its audit leaf and its outbox row as
    one statement, so the whole transaction costs two round trips plus the commit. Nothing
    commits. `send` sends the org lookup, as for an erasure.

    An open erasure for the same subject is not linked, so no subject lock is taken: the two are
    carried out side by side, erasure first (erasure.access.retrieve)."""

    def __init__(
        self,
        session: Session,
        connection: psycopg.Connection[Any],
        submission: workflow.Submission,
        *,
        protection: workflow.Protection,
        default_org: str | None,
        send: Send | None = None,
    ) -> None:
        if not submission.identifiers:
            raise ValueError("a submission needs at least one identifier")
        self._session, self._connection = session, connection
        self._submission, self._protection = submission, protection
        self._wanted = submission.org or default_org
        self._orgs = (send or connection.execute)(workflow.ORGS_SQL, {"org": self._wanted})

    def write(self) -> AccessRequest:
        """Send the writes; returns the new request, held by the session. Raises UnknownOrg."""
        access, inserts = self.prepare()
        insert_together(self._connection, inserts)
        return access

    def prepare(self) -> tuple[AccessRequest, list[Insert]]:
        """The new request (held by the session) and the writes that record it, not yet sent
        (as `workflow.PendingSubmission.prepare`). Raises UnknownOrg."""
        submission = self._submission
        org = OrgRef(*workflow.chosen_org_row(self._orgs.fetchall(), submission.org, self._wanted))
        now = datetime.now(UTC)
        received_at = submission.received_at or now
        request_id = uuid.uuid4()
        subject = workflow.seal_subject(self._protection, request_id, submission.identifiers)
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
            outcome=None,
            notes_ciphertext=None,
            notes_key_id=None,
            api_key_id=submission.api_key_id,
            attempt=0,
            next_attempt_at=None,
            end_users=0,
            conversations=0,
            entries=0,
            export_ciphertext=None,
            export_key_id=None,
            export_sha256=None,
            ready_at=None,
            expires_at=None,
            destroyed_at=None,
            created_at=now,
            updated_at=now,
        )
        if submission.notes:
            sealed = self._protection.vault.seal(
                submission.notes, context=notes_context(request_id)
            )
            access.notes_ciphertext, access.notes_key_id = sealed.ciphertext, sealed.key_id
        request_row = Insert(
            INSERT_ACCESS_SQL,
            (
                request_id,
                org.id,
                submission.source.value,
                submission.reference_system,
                submission.reference_id,
                submission.reference_url,
                submission.regulation.value,
                received_at,
                access.due_at,
                AccessStatus.RECEIVED.value,
                access.notes_ciphertext,
                access.notes_key_id,
                submission.api_key_id,
                now,
                now,
            ),
        )
        subject_rows = insert_rows(
            INSERT_ACCESS_IDENTIFIER_SQL,
            [
                (
                    request_id,
                    item.kind.value,
                    item.blind_index,
                    item.sealed.ciphertext,
                    item.sealed.key_id,
                )
                for item in subject
            ],
        )
        leaf = leaves.leaf_insert(
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
        work = outbox.outbox_insert(task_names.RETRIEVE_ACCESS, [])
        # Written by the caller's statement: the session holds it as if it had read it back.
        make_transient_to_detached(access)
        self._session.add(access)
        return access, [request_row, subject_rows, leaf, work]


def submit_access(
    session: Session,
    submission: workflow.Submission,
    *,
    protection: workflow.Protection,
    default_org: str | None,
) -> AccessRequest:
    """Record a new access request, its sealed identifiers, its audit leaf and its outbox row
    (see `PendingAccess`), which asks a worker to retrieve it. Does not commit. Raises
    UnknownOrg."""
    with pipelined(session) as connection:
        pending = PendingAccess(
            session, connection, submission, protection=protection, default_org=default_org
        )
        return pending.write()


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
