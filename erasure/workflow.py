"""The erasure request at intake: submit (with duplicate-subject linking), read and list it.

What happens to it afterwards (approve, retry, extend, cancel) is erasure.lifecycle.

Every state change happens in the caller's transaction together with its audit leaf; nothing here
commits. Framework-free: no Flask, no Celery.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased, selectinload

from erasure import deadlines, task_names
from erasure.audit import leaves
from erasure.core import request_pages
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    ErasureRequest,
    IdentifierKind,
    Org,
    Regulation,
    RequestStatus,
    Source,
    SubjectIdentifier,
)
from erasure.errors import NotFound, UnknownOrg
from erasure.free_text import notes_context
from erasure.identifiers import Sealed, Vault, identifier_context, pseudonym
from erasure.outbox import messages as outbox


@dataclass(frozen=True)
class Identifier:
    kind: IdentifierKind
    value: str  # already normalised (erasure.identifiers.normalize)


@dataclass(frozen=True)
class Submission:
    identifiers: Sequence[Identifier]
    regulation: Regulation
    source: Source
    org: str | None = None
    received_at: datetime | None = None
    reference_system: str | None = None
    reference_id: str | None = None
    reference_url: str | None = None
    notes: str | None = None
    api_key_id: uuid.UUID | None = None
    # Who submitted it, as the audit log names them (`api-key:<prefix>`, `user:<id>`,
    # `webhook:<source>`, `opendsr:<key id>`): staff and systems, never the subject.
    submitted_by: str | None = None


@dataclass(frozen=True)
class Protection:
    """The keys intake needs to store identifiers safely."""

    vault: Vault
    pseudonym_key: bytes


@dataclass
class ListFilter:
    statuses: Sequence[RequestStatus] = ()
    due_before: datetime | None = None
    source: Source | None = None
    reference_system: str | None = None
    reference_id: str | None = None
    api_key_id: uuid.UUID | None = None  # integrations see only what they submitted
    after: tuple[datetime, uuid.UUID] | None = None  # keyset cursor: (created_at, id)
    limit: int = 50
    extra: dict[str, str] = field(default_factory=dict)


def resolve_org(session: Session, name: str | None, *, default_org: str | None) -> Org:
    """The org a request goes to: the named one, the configured default, or the only one."""
    wanted = name or default_org
    if wanted is not None:
        org = session.scalar(select(Org).where(Org.name == wanted))
        if org is None:
            raise UnknownOrg(
                "no org of that name is configured" if name else "the default org is not configured"
            )
        return org
    orgs = session.scalars(select(Org).limit(2)).all()
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise UnknownOrg("no Salesforce org is configured yet")
    raise UnknownOrg("several orgs are configured: name one in `org`")


def _subject_lock_key(blind_index: bytes) -> int:
    # pg_advisory_xact_lock takes a signed 64-bit key.
    return int.from_bytes(
        hashlib.sha256(b"subject:" + blind_index).digest()[:8], "big", signed=True
    )


def find_open_request(
    session: Session, org_id: uuid.UUID, blind_indexes: Sequence[bytes]
) -> ErasureRequest | None:
    """The request a new one for these identifiers is linked to: the first request (the root) of
    the linked group of any open request of the org that shares an identifier with it, the oldest
    such root if there are several. Links always point at a root, so a group is one level deep,
    and sharing follows identifiers transitively: email-only A, then email+phone B (linked to A),
    then phone-only C is linked to A through B. The root itself may have finished meanwhile."""
    # Short queries on purpose: the blind index finds a handful of ids, then primary-key
    # lookups. One join lets a fresh table's stale statistics send the planner scanning every
    # request of the org instead (seen: 100x slower at a few thousand rows).
    candidate_ids = session.scalars(
        select(SubjectIdentifier.request_id).where(SubjectIdentifier.blind_index.in_(blind_indexes))
    ).all()
    if not candidate_ids:
        return None
    root_ids = session.scalars(
        select(func.coalesce(ErasureRequest.duplicate_of_id, ErasureRequest.id)).where(
            ErasureRequest.id.in_(set(candidate_ids)),
            ErasureRequest.org_id == org_id,
            ErasureRequest.status.not_in(TERMINAL_REQUEST_STATUSES),
        )
    ).all()
    if not root_ids:
        return None
    return session.scalar(
        select(ErasureRequest)
        .where(ErasureRequest.id.in_(set(root_ids)))
        .order_by(ErasureRequest.created_at, ErasureRequest.id)
        .limit(1)
    )


@dataclass(frozen=True)
class SealedIdentifier:
    kind: IdentifierKind
    blind_index: bytes
    sealed: Sealed


def seal_subject(
    protection: Protection, request_id: uuid.UUID, identifiers: Sequence[Identifier]
) -> list[SealedIdentifier]:
    """Each identifier's blind index and ciphertext (bound to the request): how every kind of
    request stores its subject."""
    return [
        SealedIdentifier(
            identifier.kind,
            pseudonym(protection.pseudonym_key, identifier.kind, identifier.value),
            protection.vault.seal(
                identifier.value, context=identifier_context(request_id, identifier.kind)
            ),
        )
        for identifier in identifiers
    ]


def subject_leaf(subject: Sequence[SealedIdentifier]) -> list[dict[str, str]]:
    """The subject as an audit leaf names it: kinds and pseudonyms, never a value."""
    return [
        {"kind": kind.value, "pseudonym": blind.hex()}
        for kind, blind in sorted((s.kind, s.blind_index) for s in subject)
    ]


def submit_request(
    session: Session, submission: Submission, *, protection: Protection, default_org: str | None
) -> ErasureRequest:
    """Record a new request, its encrypted identifiers and its audit leaf. Does not commit.

    A request for a subject who already has an open request in the same org is recorded and
    linked to the root of that request's group (`duplicate_of_id`, see `find_open_request`). It
    still resolves its own identifiers (one may reach records the others never do); the pipeline
    deletes each Salesforce record once, however many requests need it. Concurrent submissions
    sharing an identifier are serialised by per-identifier advisory locks (taken in sorted order,
    so never in a cycle), so neither misses the other. Raises UnknownOrg.
    """
    if not submission.identifiers:
        raise ValueError("a submission needs at least one identifier")
    org = resolve_org(session, submission.org, default_org=default_org)
    now = datetime.now(UTC)
    received_at = submission.received_at or now
    request_id = uuid.uuid4()
    subject = seal_subject(protection, request_id, submission.identifiers)
    blind_indexes = sorted({s.blind_index for s in subject})
    for blind in blind_indexes:  # sorted, so two submissions never wait on each other in a cycle
        session.execute(select(func.pg_advisory_xact_lock(_subject_lock_key(blind))))
    primary = find_open_request(session, org.id, blind_indexes)

    erasure_request = ErasureRequest(
        id=request_id,
        org=org,  # the relationship, not just the id: rendering the answer needs no lazy load
        source=submission.source,
        reference_system=submission.reference_system,
        reference_id=submission.reference_id,
        reference_url=submission.reference_url,
        regulation=submission.regulation,
        received_at=received_at,
        due_at=deadlines.due_at(submission.regulation, received_at),
        status=RequestStatus.RECEIVED,
        duplicate_of_id=primary.id if primary else None,
        api_key_id=submission.api_key_id,
        created_at=now,
        updated_at=now,
        targets=[],  # a new request has none: saves a lazy load when it is rendered
    )
    if submission.notes:
        sealed = protection.vault.seal(submission.notes, context=notes_context(request_id))
        erasure_request.notes_ciphertext, erasure_request.notes_key_id = (
            sealed.ciphertext,
            sealed.key_id,
        )
    session.add(erasure_request)
    for item in subject:
        session.add(
            SubjectIdentifier(
                request_id=request_id,
                kind=item.kind,
                blind_index=item.blind_index,
                ciphertext=item.sealed.ciphertext,
                key_id=item.sealed.key_id,
            )
        )
    leaves.append(
        session,
        kind="request.received",
        request_id=request_id,
        at=now,
        data={
            "org": org.name,
            "source": submission.source.value,
            "regulation": submission.regulation.value,
            "received_at": leaves.timestamp(received_at),
            "due_at": leaves.timestamp(erasure_request.due_at),
            "subject": subject_leaf(subject),
            "reference": {"system": submission.reference_system, "id": submission.reference_id},
            "duplicate_of": str(primary.id) if primary else None,
            "submitted_by": submission.submitted_by,
        },
    )
    outbox.enqueue(session, task_names.RESOLVE, [str(request_id), 0])
    session.flush()
    return erasure_request


def get_request(
    session: Session, request_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
) -> ErasureRequest:
    """One request with its identifiers and targets; NotFound if absent or not visible."""
    query = (
        select(ErasureRequest)
        .where(ErasureRequest.id == request_id)
        .options(selectinload(ErasureRequest.targets), selectinload(ErasureRequest.org))
    )
    if api_key_id is not None:
        query = query.where(ErasureRequest.api_key_id == api_key_id)
    erasure_request = session.scalar(query)
    if erasure_request is None:
        raise NotFound("no such erasure request")
    return erasure_request


def list_requests(
    session: Session, filters: ListFilter
) -> list[tuple[ErasureRequest, uuid.UUID | None]]:
    """Newest first, keyset-paginated on (created_at, id): stable under concurrent inserts.

    Each row comes with the API key that submitted the request it is linked to (None when it is
    not linked), so whether an integration may see the link is known without a query per row.
    One statement for the page (org and link owner joined), one for the targets' states.
    """
    conditions: list[ColumnElement[bool]] = []
    if filters.due_before is not None:
        conditions.append(ErasureRequest.due_at < filters.due_before)
    if filters.source is not None:
        conditions.append(ErasureRequest.source == filters.source)
    if filters.reference_system is not None:
        conditions.append(ErasureRequest.reference_system == filters.reference_system)
    if filters.reference_id is not None:
        conditions.append(ErasureRequest.reference_id == filters.reference_id)
    if filters.api_key_id is not None:
        conditions.append(ErasureRequest.api_key_id == filters.api_key_id)
    page = request_pages.PageQuery(
        conditions=conditions,
        statuses=filters.statuses,
        after=filters.after,
        limit=filters.limit,
    )
    linked = aliased(ErasureRequest, name="linked")
    query = (
        request_pages.page_select(page, with_targets=True)
        .outerjoin(linked, linked.id == ErasureRequest.duplicate_of_id)
        .add_columns(linked.api_key_id)
    )
    return [(row[0], row[1]) for row in session.execute(query)]
