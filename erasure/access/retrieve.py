"""Retrieve an access request: resolve the subject's end users and conversations, read their
entries within the entries budget, then build the sealed export.

Erasure comes first. A record an open erasure is about to delete is not read (a read would keep
it active for ~30 minutes and hold the deletion back); the access request waits, and a record
the erasure deleted is reported as erased, not read. A record that was read is written to
`conversation_activity`, so a later erasure's deletion waits for the window instead of spending
a call on a 412 (erasure.pipeline.scheduler).

Work is leased (`next_attempt_at`), not held under a row lock, so network calls run outside any
transaction; a run is bounded (`calls_per_run`) and the next tick goes on where it stopped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from erasure.access import budget
from erasure.access.disclose import finish, read_context
from erasure.access.models import (
    OPEN_ACCESS_STATUSES,
    AccessIdentifier,
    AccessRead,
    AccessRequest,
    AccessStatus,
    ReadStatus,
)
from erasure.audit import leaves
from erasure.core.models import Org, Target, TargetStatus
from erasure.identifiers import Sealed, identifier_context
from erasure.pipeline import resolve
from erasure.pipeline.context import Pipeline
from erasure.pipeline.holds import record_held
from erasure.pipeline.models import ConversationActivity
from erasure.salesforce.errors import (
    EngagementApiNotFoundError,
    RateLimitedError,
    SalesforceError,
)

#: Target states that mean "an erasure still means to delete this record".
logger = logging.getLogger(__name__)

_ERASING = (
    TargetStatus.PENDING,
    TargetStatus.BLOCKED_OPEN_SESSION,
    TargetStatus.BATCHED,
    TargetStatus.REQUESTED,
    TargetStatus.IN_PROGRESS,
)


@dataclass(frozen=True)
class AccessTunables:
    window: budget.EntriesWindow = field(default_factory=budget.EntriesWindow)
    #: How long an entries read keeps a conversation active (documented: about 30 minutes).
    activity_s: float = 1800.0
    #: Entries calls one run may spend before it hands over to the next tick.
    calls_per_run: int = 60
    record_limit: int = 100
    #: How often a record waiting on an erasure is looked at again.
    erasure_recheck_s: float = 30.0
    #: A claimed request is left alone this long by other runs.
    lease_s: float = 120.0
    #: After a failed look-up or read, the request is tried again this much later.
    retry_s: float = 30.0
    #: The export's retention date, from when it is ready.
    export_retention: timedelta = timedelta(days=30)


def run(ctx: Pipeline, tunables: AccessTunables, *, limit: int = 5) -> int:
    """Work up to `limit` due access requests; returns how many were worked."""
    worked = 0
    while worked < limit and (request_id := _claim_next(ctx, tunables)) is not None:
        try:
            work(ctx, tunables, request_id)
        except SalesforceError as exc:
            # The org, a token or the network failed: this request waits for a later tick (its
            # reads so far are kept), and the others of this run go on.
            logger.warning(
                "access retrieval failed; retried later",
                extra={"access_request": str(request_id), "error": exc.code},
            )
            _retry_later(ctx, request_id, tunables.retry_s)
        worked += 1
    return worked


def _retry_later(ctx: Pipeline, request_id: uuid.UUID, seconds: float) -> None:
    with ctx.sessionmaker() as session, session.begin():
        access = session.get(AccessRequest, request_id, with_for_update=True)
        if access is not None and access.status in OPEN_ACCESS_STATUSES:
            access.next_attempt_at = ctx.clock() + timedelta(seconds=seconds)


def _claim_next(ctx: Pipeline, tunables: AccessTunables) -> uuid.UUID | None:
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        access = session.scalar(
            select(AccessRequest)
            .where(
                AccessRequest.status.in_(OPEN_ACCESS_STATUSES),
                or_(AccessRequest.next_attempt_at.is_(None), AccessRequest.next_attempt_at <= now),
            )
            .order_by(AccessRequest.due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if access is None:
            return None
        access.attempt += 1
        access.next_attempt_at = now + timedelta(seconds=tunables.lease_s)
        return access.id


def work(ctx: Pipeline, tunables: AccessTunables, request_id: uuid.UUID) -> None:
    with ctx.sessionmaker() as session:
        access = session.get(AccessRequest, request_id)
        if access is None or access.status not in OPEN_ACCESS_STATUSES:
            return
        status = access.status
    if status is AccessStatus.RECEIVED and not _resolve(ctx, request_id):
        return
    wait_until = _read_pending(ctx, tunables, request_id)
    with ctx.sessionmaker() as session, session.begin():
        access = session.get(AccessRequest, request_id, with_for_update=True)
        if access is None or access.status is not AccessStatus.RETRIEVING:
            return
        if wait_until is not None:
            access.next_attempt_at = wait_until
            return
        finish(session, ctx.vault, access, now=ctx.clock(), retention=tunables.export_retention)


def _resolve(ctx: Pipeline, request_id: uuid.UUID) -> bool:
    """End users (the erasure pipeline's own look-up) and their conversations, recorded as reads
    to do. False when the request ended here (no data)."""
    with ctx.sessionmaker() as session:
        access = session.get_one(AccessRequest, request_id)
        rows = session.scalars(
            select(AccessIdentifier).where(AccessIdentifier.request_id == request_id)
        ).all()
        identifiers = [
            (
                row.kind,
                ctx.vault.open(
                    Sealed(row.key_id, row.ciphertext),
                    context=identifier_context(request_id, row.kind),
                ),
            )
            for row in rows
            if row.ciphertext is not None and row.key_id is not None
        ]
        claim = resolve.Claim(request_id, access.attempt, access.org_id, identifiers)
    end_user_ids = [record_id for _, record_id in resolve.look_up(ctx, claim)]
    with ctx.sessionmaker() as session:
        client = ctx.clients.any_for_org(session.get_one(Org, claim.org_id))
    conversations = client.conversations_of(end_user_ids) if client and end_user_ids else []
    with ctx.sessionmaker() as session, session.begin():
        locked = session.get(AccessRequest, request_id, with_for_update=True)
        if locked is None or locked.status is not AccessStatus.RECEIVED:
            return False
        access = locked
        now = ctx.clock()
        access.end_users, access.conversations = len(end_user_ids), len(conversations)
        session.add_all(
            AccessRead(
                request_id=request_id,
                end_user_id=c.end_user_id,
                conversation_id=c.id,
                conversation_identifier=c.identifier,
            )
            for c in conversations
        )
        access.status = AccessStatus.RETRIEVING
        leaves.append(
            session,
            kind="access.resolved",
            request_id=request_id,
            at=now,
            data={"end_users": len(end_user_ids), "conversations": len(conversations)},
        )
    return True


@dataclass
class _Read:
    id: uuid.UUID
    end_user_id: str
    conversation_id: str
    identifier: str


def _read_pending(
    ctx: Pipeline, tunables: AccessTunables, request_id: uuid.UUID
) -> datetime | None:
    """Read every pending conversation the budget and erasures allow; None when none is left
    pending, else when to come back."""
    spent = 0
    wait_until: datetime | None = None
    while True:
        with ctx.sessionmaker() as session, session.begin():
            access = session.get_one(AccessRequest, request_id)
            now = ctx.clock()
            pending = session.scalars(
                select(AccessRead).where(
                    AccessRead.request_id == request_id, AccessRead.status == ReadStatus.PENDING
                )
            ).all()
            ready = _sort_out_erasures(session, access.org_id, pending)
            if len(ready) < len(pending):
                wait_until = now + timedelta(seconds=tunables.erasure_recheck_s)
            if not ready:
                return wait_until if any(r.status is ReadStatus.PENDING for r in pending) else None
            first = ready[0]
            nxt = _Read(
                first.id,
                first.end_user_id or "",
                first.conversation_id or "",
                first.conversation_identifier or "",
            )
            org_id = access.org_id
        if spent >= tunables.calls_per_run:
            return ctx.clock()
        outcome = _read_one(ctx, tunables, org_id, nxt)
        if isinstance(outcome, datetime):
            return outcome
        spent += outcome


def _sort_out_erasures(
    session: Session, org_id: uuid.UUID, pending: Sequence[AccessRead]
) -> list[AccessRead]:
    """The pending reads no erasure is about to delete. A record an erasure deleted is marked
    erased (nothing left to disclose); one it still means to delete waits."""
    ids = {r.end_user_id for r in pending} | {r.conversation_id for r in pending}
    states: dict[str, set[TargetStatus]] = {}
    for salesforce_id, status in session.execute(
        select(Target.salesforce_id, Target.status).where(
            Target.org_id == org_id,
            Target.salesforce_id.in_(ids),
            # A record a legal hold keeps is not about to be deleted: it is read at once, or
            # the access deadline would wait on the hold.
            ~record_held(),
        )
    ):
        states.setdefault(salesforce_id or "", set()).add(status)
    ready = []
    for read in pending:
        seen = states.get(read.end_user_id or "", set()) | states.get(
            read.conversation_id or "", set()
        )
        if seen & set(_ERASING):
            continue
        if TargetStatus.DELETED in seen:
            read.status = ReadStatus.ERASED
            continue
        ready.append(read)
    return ready


def _read_one(
    ctx: Pipeline, tunables: AccessTunables, org_id: uuid.UUID, read: _Read
) -> int | datetime:
    """Read one conversation, every page; returns the calls spent, or when to come back."""
    with ctx.sessionmaker() as session:
        org = session.get_one(Org, org_id)
        credentials = list(org.credentials)
        reader = ctx.clients.any_for_org(org)
    if reader is None:
        raise resolve.NoCredentialError("the org has no active credential")
    entries: list[dict[str, object]] = []
    token: str | None = None
    calls = 0
    while True:
        with ctx.sessionmaker() as session, session.begin():
            chosen = budget.spend(session, credentials, tunables.window, ctx.clock())
        if isinstance(chosen, datetime):
            return chosen
        client = ctx.clients.for_credential(org, chosen)
        calls += 1
        try:
            page = client.entries_page(
                read.identifier, page_token=token, record_limit=tunables.record_limit
            )
        except RateLimitedError as exc:
            return ctx.clock() + timedelta(seconds=exc.retry_after or tunables.window.window_s)
        except EngagementApiNotFoundError:
            if reader.existing_conversations([read.conversation_id]):
                raise  # an org fault (toggle off, bad path): the task retries later
            return _mark(ctx, tunables, read, None, erased=True)
        entries.extend(page.entries)
        # Active from the first page on: a delete must wait even if a later page fails.
        _touch(ctx, tunables, org_id, read)
        if page.next_page_token is None:
            break
        token = page.next_page_token
    _mark(ctx, tunables, read, entries, erased=False)
    return calls


def _touch(ctx: Pipeline, tunables: AccessTunables, org_id: uuid.UUID, read: _Read) -> None:
    until = ctx.clock() + timedelta(seconds=tunables.activity_s)
    with ctx.sessionmaker() as session, session.begin():
        for salesforce_id in (read.end_user_id, read.conversation_id):
            stmt = insert(ConversationActivity).values(
                org_id=org_id, salesforce_id=salesforce_id, active_until=until
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["org_id", "salesforce_id"],
                    set_={"active_until": until},
                    where=ConversationActivity.active_until < until,
                )
            )


def _mark(
    ctx: Pipeline,
    tunables: AccessTunables,
    read: _Read,
    entries: list[dict[str, object]] | None,
    *,
    erased: bool,
) -> int:
    with ctx.sessionmaker() as session, session.begin():
        row = session.get(AccessRead, read.id, with_for_update=True)
        if row is None or row.status is not ReadStatus.PENDING:
            return 0
        row.read_at = ctx.clock()
        if erased or entries is None:
            row.status = ReadStatus.ERASED
            return 0
        sealed = ctx.vault.seal(json.dumps(entries), context=read_context(row.id))
        row.entries_ciphertext, row.key_id = sealed.ciphertext, sealed.key_id
        row.entries = len(entries)
        row.status = ReadStatus.READ
    return 0
