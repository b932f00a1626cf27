"""Resolve: a request's subject -> the Salesforce records to delete, by SOQL: its MessagingEndUser
ids, or for a conversations-only request (scope `conversations`, the end users kept) the
Conversation ids it lists, or else every conversation of the subject's end users.

Three steps with the network outside any transaction: claim (bump the fencing attempt, move to
`resolving`), look up, then record the targets only if the claim still holds. A late or duplicate
message carries an old attempt number and changes nothing.

Every request resolves its own identifiers, a linked duplicate too (`duplicate_of_id` groups
requests for one subject; it does not skip work): an identifier only the duplicate carries may
reach records its primary's never do. A record another request is already deleting is not sent
twice: its new target attaches to that deletion (`deletions.attach`). A duplicate needs no
approval of its own: it is approved with its primary.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.leaves import LeafValue
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    RequestStatus,
    SubjectIdentifier,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.identifiers import Sealed, identifier_context
from erasure.pipeline.context import Pipeline
from erasure.pipeline.deletions import attach
from erasure.pipeline.holds import hold_if_covered
from erasure.pipeline.salesforce_port import SalesforcePort
from erasure.pipeline.states import (
    lock_request,
    move_request,
    raise_alert,
    record_pseudonym,
    settle_request,
)
from erasure.salesforce import ids as sfids
from erasure.salesforce.errors import SalesforceError
from erasure.salesforce.models import Subject, SubjectKind

SUBJECT_KINDS = {
    IdentifierKind.PHONE: SubjectKind.PHONE,
    IdentifierKind.EMAIL: SubjectKind.EMAIL,
    IdentifierKind.MESSAGING_PLATFORM_KEY: SubjectKind.PLATFORM_KEY,
    IdentifierKind.CONTACT_ID: SubjectKind.CONTACT_ID,
}


class Outcome(StrEnum):
    MISSING = "missing"
    BUSY = "busy"  # another worker holds the row
    STALE = "stale"  # the message's attempt is not the request's: late or duplicate delivery
    DONE = "done"  # nothing left to do at this stage
    WAITING = "waiting"  # for approval (its own, or its primary's)
    NO_DATA = "no_data"
    RESOLVED = "resolved"
    FENCED = "fenced"  # someone else claimed it while we were looking up
    HELD = "held"  # resolved, then stopped before deletion by a legal hold


@dataclass(frozen=True)
class Claim:
    request_id: uuid.UUID
    attempt: int
    org_id: uuid.UUID
    identifiers: list[tuple[IdentifierKind, str]]
    scope: ErasureScope = ErasureScope.SUBJECT


#: A record to delete: its kind and its 18-char id.
Found = tuple[TargetKind, str]


@dataclass(frozen=True)
class LeftAlone:
    """A conversation id listed at intake that is not deleted, and why: `not_found` (no such
    record) or `not_the_subjects` (a conversation of someone else's end user). An id at intake
    is a claim about the subject, not an authority to delete whatever it names."""

    record: str
    why: str


def claim(  # noqa: PLR0911  # one early return per reason a message changes nothing
    ctx: Pipeline, request_id: uuid.UUID, attempt: int
) -> Claim | Outcome:
    with ctx.sessionmaker() as session, session.begin():
        request = lock_request(session, request_id, skip_locked=True)
        if request is None:
            exists = session.get(ErasureRequest, request_id) is not None
            return Outcome.BUSY if exists else Outcome.MISSING
        if request.attempt != attempt:
            return Outcome.STALE
        if request.status in TERMINAL_REQUEST_STATUSES or request.status in (
            RequestStatus.DELETING,
            RequestStatus.CONFIRMING,
        ):
            return Outcome.DONE
        now = ctx.clock()
        if request.status is RequestStatus.AWAITING_APPROVAL:
            return Outcome.WAITING
        org = session.get(Org, request.org_id)
        if org is None:  # a foreign key: cannot happen
            return Outcome.MISSING
        if (
            request.status is RequestStatus.RECEIVED
            and org.requires_approval
            and not _approve_with_primary(session, request, at=now)
        ):
            move_request(
                session,
                request,
                RequestStatus.AWAITING_APPROVAL,
                at=now,
                kind="request.awaiting_approval",
            )
            return Outcome.WAITING
        request.attempt += 1
        move_request(
            session,
            request,
            RequestStatus.RESOLVING,
            at=now,
            kind="request.resolving",
            data={"attempt": request.attempt},
        )
        rows = session.scalars(
            select(SubjectIdentifier).where(SubjectIdentifier.request_id == request_id)
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
        return Claim(request_id, request.attempt, org.id, identifiers, request.scope)


#: A primary in one of these states was approved (or needed no approval): its duplicates go on.
_PAST_APPROVAL = frozenset(
    {
        RequestStatus.APPROVED,
        RequestStatus.RESOLVING,
        RequestStatus.DELETING,
        RequestStatus.CONFIRMING,
        RequestStatus.COMPLETED,
        RequestStatus.COMPLETED_NO_DATA,
        RequestStatus.FAILED,
    }
)


def _approve_with_primary(session: Session, request: ErasureRequest, *, at: datetime) -> bool:
    """Approve a linked duplicate of an approved request with it (no second approval); True if
    it was. A duplicate whose primary still awaits approval waits too, and `actions.approve`
    approves them together; after a cancelled or rejected primary it needs its own approval."""
    if request.duplicate_of_id is None:
        return False
    # A share lock: an approval of the primary (which locks it for update, then its waiting
    # duplicates) either comes first, and we see it, or after us, and it sees this one waiting.
    primary = session.scalar(
        select(ErasureRequest)
        .where(ErasureRequest.id == request.duplicate_of_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    if primary is None or primary.status not in _PAST_APPROVAL:
        return False
    move_request(
        session,
        request,
        RequestStatus.APPROVED,
        at=at,
        kind="request.approved",
        data={"by": None, "with": str(primary.id)},
    )
    return True


def look_up(ctx: Pipeline, claim: Claim) -> list[Found]:
    """The records to delete: the subject's MessagingEndUser ids, or for a conversations-only
    request its Conversation ids; deduplicated on the 15-char form, sorted."""
    return find(ctx, claim)[0]


def find(ctx: Pipeline, claim: Claim) -> tuple[list[Found], list[LeftAlone]]:
    """look_up, with the listed conversation ids that are left alone and why."""
    with ctx.sessionmaker() as session:
        org = session.get(Org, claim.org_id)
        if org is None:
            raise NoCredentialError("the org is gone")
        client = ctx.clients.any_for_org(org)
        if client is None:
            # session.get above began the transaction: commit it (a nested begin() would raise).
            raise_alert(
                session,
                kind="org_has_no_credentials",
                message="the org has no active credential; requests wait",
                org_id=org.id,
            )
            session.commit()
            raise NoCredentialError("the org has no active credential")
    if claim.scope is ErasureScope.CONVERSATIONS:
        ids, left_alone = _conversations(client, claim.identifiers)
        return [(TargetKind.CONVERSATION, i) for i in ids], left_alone
    return [(TargetKind.MESSAGING_END_USER, i) for i in _end_users(client, claim.identifiers)], []


def _end_users(client: SalesforcePort, identifiers: list[tuple[IdentifierKind, str]]) -> list[str]:
    # One form per record (18 characters), so targets of one record from different requests
    # and lookups compare equal.
    found: dict[str, str] = {}
    direct: list[str] = []
    for kind, value in identifiers:
        if kind is IdentifierKind.CONVERSATION_ID:
            continue  # names a conversation, not the subject
        if kind is IdentifierKind.MESSAGING_END_USER_ID:
            direct.append(value)
            continue
        for ref in client.find_end_users(Subject(SUBJECT_KINDS[kind], value)):
            found.setdefault(sfids.to15(ref.id), sfids.to18(ref.id))
    if direct:
        for end_user_id in client.existing_end_users(direct):
            found.setdefault(sfids.to15(end_user_id), sfids.to18(end_user_id))
    return sorted(found.values())


def _conversations(
    client: SalesforcePort, identifiers: list[tuple[IdentifierKind, str]]
) -> tuple[list[str], list[LeftAlone]]:
    """Every conversation of the subject's end users (through their messaging sessions), or of
    those the listed ids that are among them: a listed id of another subject's conversation, or
    of none, is left alone (and the others still go)."""
    listed = [value for kind, value in identifiers if kind is IdentifierKind.CONVERSATION_ID]
    subjects = {
        sfids.to15(ref.id): sfids.to18(ref.id)
        for ref in client.conversations_of(_end_users(client, identifiers))
    }
    if not listed:
        return sorted(subjects.values()), []
    kept: dict[str, str] = {}
    left_alone: dict[str, LeftAlone] = {}
    outside = [i for i in listed if sfids.to15(i) not in subjects]
    existing = {sfids.to15(i) for i in client.existing_conversations(outside)} if outside else set()
    for value in listed:
        short = sfids.to15(value)
        if short in subjects:
            kept[short] = subjects[short]
        elif short not in left_alone:
            why = "not_the_subjects" if short in existing else "not_found"
            left_alone[short] = LeftAlone(sfids.to18(value), why)
    return sorted(kept.values()), list(left_alone.values())


class NoCredentialError(SalesforceError):
    """The org has no active credential: a configuration fault, retried later by the sweeper."""

    code = "no_credential"
    retryable = True
    org_fault = True


def _left_alone_leaf(ctx: Pipeline, left_alone: Sequence[LeftAlone]) -> list[LeafValue]:
    # By pseudonym, as targets are: the leaf says which id went where, never the id.
    return [
        {"record": record_pseudonym(ctx.pseudonym_key, item.record), "why": item.why}
        for item in left_alone
    ]


def _nothing_found(claim: Claim, left_alone: Sequence[LeftAlone]) -> str:
    if claim.scope is not ErasureScope.CONVERSATIONS:
        return "no Messaging end user was found for the subject"
    if not left_alone:
        return "no conversation was found"
    counts = Counter(item.why for item in left_alone)
    parts = []
    if counts["not_the_subjects"]:
        parts.append(f"{counts['not_the_subjects']} belong to another subject")
    if counts["not_found"]:
        parts.append(f"{counts['not_found']} not found")
    return f"no listed conversation is the subject's: {', '.join(parts)}; nothing deleted"


def record(
    ctx: Pipeline, claim: Claim, found: list[Found], left_alone: Sequence[LeftAlone] = ()
) -> Outcome:
    with ctx.sessionmaker() as session, session.begin():
        request = lock_request(session, claim.request_id)
        if (
            request is None
            or request.attempt != claim.attempt
            or request.status is not RequestStatus.RESOLVING
        ):
            return Outcome.FENCED
        now = ctx.clock()
        extra: dict[str, LeafValue] = {}
        if left_alone:
            extra["left_alone"] = _left_alone_leaf(ctx, left_alone)
        if not found:
            request.outcome = _nothing_found(claim, left_alone)
            move_request(
                session,
                request,
                RequestStatus.COMPLETED_NO_DATA,
                at=now,
                kind="request.completed_no_data",
                data={"records_found": 0, **extra},
            )
            return Outcome.NO_DATA
        targets = [
            Target(
                id=uuid.uuid4(),
                request_id=request.id,
                org_id=request.org_id,
                kind=kind,
                salesforce_id=salesforce_id,
                status=TargetStatus.PENDING,
                due_at=request.due_at,
                created_at=now,
                updated_at=now,
            )
            for kind, salesforce_id in found
        ]
        session.add_all(targets)
        move_request(
            session,
            request,
            RequestStatus.DELETING,
            at=now,
            kind="request.resolved",
            data={
                "records_found": len(targets),
                "targets": [
                    {
                        "target": str(target.id),
                        "kind": target.kind.value,
                        "record": record_pseudonym(ctx.pseudonym_key, target.salesforce_id or ""),
                    }
                    for target in targets
                ],
                **extra,
            },
        )
        session.flush()
        # A legal hold stops it here, before anything is planned or attached (pipeline.holds).
        if hold_if_covered(session, request, at=now):
            return Outcome.HELD
        # A record another request is deleting (or has deleted) rides on that deletion.
        if attach(ctx, session, targets, now):
            session.flush()
            settle_request(session, request.id, at=now)
        return Outcome.RESOLVED


def resolve(ctx: Pipeline, request_id: uuid.UUID, attempt: int) -> Outcome:
    """Move a received (or approved) request to `deleting` with its targets, or finish it as
    `completed_no_data`. Raises SalesforceError on a failed lookup (the request stays
    `resolving`; a retry or the sweeper claims it again)."""
    claimed = claim(ctx, request_id, attempt)
    if isinstance(claimed, Outcome):
        return claimed
    return record(ctx, claimed, *find(ctx, claimed))
