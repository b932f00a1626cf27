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
from typing import Any

import psycopg
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased, selectinload

from erasure import deadlines, task_names
from erasure.audit import leaves
from erasure.core import request_pages
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    Regulation,
    RequestStatus,
    Source,
)
from erasure.core.new_request import NewRequest, OrgRef
from erasure.db import Insert, Send, insert_rows, insert_together, pipelined
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
    scope: ErasureScope = ErasureScope.SUBJECT


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


_TERMINAL = sorted(status.value for status in TERMINAL_REQUEST_STATUSES)

#: The orgs a request may go to: the named one, or (no name) the first two, to tell "the only
#: one" from "several".
ORGS_SQL = (
    "SELECT id, name FROM orgs WHERE CAST(%(org)s AS text) IS NULL OR name = %(org)s "
    "ORDER BY name LIMIT 2"
)

#: The candidates for the request a new one for these identifiers is linked to: the first
#: request (the root) of the linked group of each open request that shares an identifier with
#: it, with its org and creation time; `PendingSubmission.prepare` links to the oldest root in
#: the request's org. Links always point at a root, so a group is one level deep, and sharing
#: follows identifiers transitively: email-only A, then email+phone B (linked to A), then
#: phone-only C is linked to A through B. The root itself may have finished meanwhile.
#: The query is a PL/pgSQL function (migration c4e91f2a7b35): prepared once per connection,
#: planned once, generically, with sequential scans off (settings that hold only inside it), so
#: it reads identifiers through their index and requests by a probe of their key each, whatever
#: the tables' sizes and statistics; planned freely it read every request of the org on an
#: unanalysed table, scanned the requests on a small one, and cost Postgres a plan per
#: submission (more than running it).
_OPEN_ROOTS_SQL = (
    "SELECT id, api_key_id, org_id, created_at FROM erasure_open_roots(%(blinds)s, %(terminal)s)"
)

#: A submission's first reads, one statement: the orgs (ORGS_SQL's query), then the subject locks (in
#: the order given) and the duplicate lookup (`_OPEN_ROOTS_SQL`), which runs once the locks are
#: granted, with a snapshot of its own (a function, migration e7b3d1a94c2f: a statement's own
#: snapshot is taken before its locks are granted). `is_org` tells the two kinds of rows apart.
FIRST_READS_SQL = (
    "SELECT true AS is_org, id, name, NULL::uuid AS api_key_id, NULL::uuid AS org_id, "  # noqa: S608  # constants only
    "NULL::timestamptz AS created_at FROM (" + ORGS_SQL + ") AS o "
    "UNION ALL SELECT false, id, NULL, api_key_id, org_id, created_at "
    "FROM erasure_locked_open_roots(%(locks)s, %(blinds)s, %(terminal)s)"
)

INSERT_REQUEST_SQL = (
    "INSERT INTO erasure_requests (id, org_id, source, reference_system, reference_id, "
    "reference_url, regulation, received_at, due_at, status, notes_ciphertext, notes_key_id, "
    "duplicate_of_id, api_key_id, attempt, is_at_risk, created_at, updated_at, scope) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, false, %s, %s, %s)"
)
INSERT_IDENTIFIER_SQL = (
    "INSERT INTO subject_identifiers (request_id, kind, blind_index, ciphertext, key_id) "
    "VALUES (%s, %s, %s, %s, %s)"
)


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


def chosen_org_row(
    rows: Sequence[tuple[uuid.UUID, str]], name: str | None, wanted: str | None
) -> tuple[uuid.UUID, str]:
    """`resolve_org` on the rows `ORGS_SQL` read: the org's (id, name)."""
    if wanted is not None:
        if not rows:
            raise UnknownOrg(
                "no org of that name is configured" if name else "the default org is not configured"
            )
    elif not rows:
        raise UnknownOrg("no Salesforce org is configured yet")
    elif len(rows) > 1:
        raise UnknownOrg("several orgs are configured: name one in `org`")
    return rows[0][0], rows[0][1]


class PendingSubmission:
    """A submission in two steps on a pipelined connection (`erasure.db.pipelined`), so the hot
    path pays two round trips, in two statements, however many identifiers it has: creating it
    sends the org lookup with the subject locks and the duplicate lookup (`FIRST_READS_SQL`);
    `write` reads the answer and sends the request, its identifiers, its audit leaf and its
    outbox row as one statement (`prepare` gives them to a caller that adds its own). Nothing
    commits. `send` sends the first reads (`connection.execute` when not given): the API's passes
    them with the Idempotency-Key's claim, in the same statement.

    A request for a subject who already has an open request in the same org is recorded and
    linked to the root of that request's group (`duplicate_of_id`, see `_OPEN_ROOTS_SQL`). It
    still resolves its own identifiers (one may reach records the others never do); the pipeline
    deletes each Salesforce record once, however many requests need it. Concurrent submissions
    sharing an identifier are serialised by per-identifier advisory locks (taken in sorted order,
    so never in a cycle; the lookup reads with a snapshot taken once they are granted, so it sees
    whatever their last holder committed), so neither misses the other.
    """

    def __init__(
        self,
        session: Session,
        connection: psycopg.Connection[Any],
        submission: Submission,
        *,
        protection: Protection,
        default_org: str | None,
        send: Send | None = None,
    ) -> None:
        if not submission.identifiers:
            raise ValueError("a submission needs at least one identifier")
        self._session, self._connection = session, connection
        self._submission, self._protection = submission, protection
        self._wanted = submission.org or default_org
        self._indexed = [
            (identifier, pseudonym(protection.pseudonym_key, identifier.kind, identifier.value))
            for identifier in submission.identifiers
        ]
        blinds = sorted({blind for _, blind in self._indexed})
        # Locked in sorted order, so two submissions never wait on each other in a cycle.
        self._reads = (send or connection.execute)(
            FIRST_READS_SQL,
            {
                "org": self._wanted,
                "locks": [_subject_lock_key(blind) for blind in blinds],
                "blinds": blinds,
                "terminal": _TERMINAL,
            },
        )
        self.linked_owner: uuid.UUID | None = None  # its link's submitting API key, after `write`

    def write(self) -> ErasureRequest:
        """Send the writes; returns the new request, held by the session. Raises UnknownOrg."""
        new, inserts = self.prepare()
        insert_together(self._connection, inserts)
        return new.held(self._session)

    def prepare(self) -> tuple[NewRequest, list[Insert]]:
        """The new request (a plain value: `NewRequest.held` makes the ORM object) and the
        writes that record it, not yet sent: the caller sends them, with any of its own, in one
        statement (`insert_together`). Raises UnknownOrg."""
        submission = self._submission
        rows = self._reads.fetchall()
        orgs = [(org_id, name) for is_org, org_id, name, *_ in rows if is_org]
        org = OrgRef(*chosen_org_row(orgs, submission.org, self._wanted))
        # The oldest open root in the request's org (by creation, then id), if any.
        roots = sorted(
            (created_at, root_id, owner)
            for is_org, root_id, _, owner, org_id, created_at in rows
            if not is_org and org_id == org.id
        )
        primary_id, self.linked_owner = roots[0][1:] if roots else (None, None)
        now = datetime.now(UTC)
        received_at = submission.received_at or now
        request_id = uuid.uuid4()
        notes = (
            self._protection.vault.seal(submission.notes, context=notes_context(request_id))
            if submission.notes
            else None
        )
        new = NewRequest(
            id=request_id,
            org=org,
            source=submission.source,
            reference_system=submission.reference_system,
            reference_id=submission.reference_id,
            reference_url=submission.reference_url,
            regulation=submission.regulation,
            scope=submission.scope,
            received_at=received_at,
            due_at=deadlines.due_at(submission.regulation, received_at),
            notes_ciphertext=notes.ciphertext if notes else None,
            notes_key_id=notes.key_id if notes else None,
            duplicate_of_id=primary_id,
            api_key_id=submission.api_key_id,
            created_at=now,
        )
        request_row = Insert(
            INSERT_REQUEST_SQL,
            (
                request_id,
                org.id,
                submission.source.value,
                submission.reference_system,
                submission.reference_id,
                submission.reference_url,
                submission.regulation.value,
                received_at,
                new.due_at,
                new.status.value,
                new.notes_ciphertext,
                new.notes_key_id,
                primary_id,
                submission.api_key_id,
                now,
                now,
                submission.scope.value,
            ),
        )
        leaf = leaves.leaf_insert(
            kind="request.received",
            request_id=request_id,
            at=now,
            data=self._leaf_data(new, org.name, primary_id),
        )
        work = outbox.outbox_insert(task_names.RESOLVE, [str(request_id), 0])
        return new, [request_row, self._subject_rows(request_id), leaf, work]

    def _subject_rows(self, request_id: uuid.UUID) -> Insert:
        rows = []
        for identifier, blind in self._indexed:
            sealed = self._protection.vault.seal(
                identifier.value, context=identifier_context(request_id, identifier.kind)
            )
            rows.append(
                (request_id, identifier.kind.value, blind, sealed.ciphertext, sealed.key_id)
            )
        return insert_rows(INSERT_IDENTIFIER_SQL, rows)

    def _leaf_data(
        self, erasure_request: NewRequest, org_name: str, primary_id: uuid.UUID | None
    ) -> dict[str, leaves.LeafValue]:
        submission = self._submission
        return {
            "org": org_name,
            "source": submission.source.value,
            "regulation": submission.regulation.value,
            "received_at": leaves.timestamp(erasure_request.received_at),
            "due_at": leaves.timestamp(erasure_request.due_at),
            "subject": [
                {"kind": identifier.kind.value, "pseudonym": blind.hex()}
                for identifier, blind in sorted(
                    self._indexed, key=lambda pair: (pair[0].kind.value, pair[1])
                )
            ],
            "reference": {"system": submission.reference_system, "id": submission.reference_id},
            "duplicate_of": str(primary_id) if primary_id else None,
            "submitted_by": submission.submitted_by,
            # Only a conversations-only request says so: older leaves keep their shape.
            **(
                {"scope": submission.scope.value}
                if submission.scope is not ErasureScope.SUBJECT
                else {}
            ),
        }


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
    """Record a new request, its encrypted identifiers, its audit leaf and its outbox row (see
    `PendingSubmission`) in two round trips. Does not commit. Raises UnknownOrg."""
    with pipelined(session) as connection:
        pending = PendingSubmission(
            session, connection, submission, protection=protection, default_org=default_org
        )
        return pending.write()


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
        conditions.extend(request_pages.due_before(filters.due_before))
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
