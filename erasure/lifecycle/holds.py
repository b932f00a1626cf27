"""What approvers do with legal holds: place one (on a subject, or an org-wide matter), release
it, list and read them, and override the holds a request waits on. The API and the console call
these; how a hold stops and resumes erasure is erasure.pipeline.holds. Nothing here commits.

Privacy: a subject is stored and logged only as its pseudonym (the HMAC requests use for their
identifiers); reasons are free text that may name people, so they are sealed, and the leaves
carry their SHA-256.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import any_, literal, select
from sqlalchemy.orm import Session

from erasure.audit import leaves
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    Org,
    RequestStatus,
    SubjectIdentifier,
)
from erasure.errors import InvalidTransition, NotFound
from erasure.identifiers import Sealed, Vault, pseudonym
from erasure.pipeline.holds import (
    OVERRIDE,
    covering,
    hold,
    is_active,
    lock_holds,
    open_wait,
    override_context,
    reason_context,
    resume,
    resume_free,
)
from erasure.pipeline.models import HoldScope, HoldWait, LegalHold
from erasure.pipeline.states import lock_request
from erasure.workflow import Protection, resolve_org

#: How many holds a list shows at most.
LIST_LIMIT = 500


@dataclass(frozen=True)
class Placement:
    reason: str
    ends_at: datetime
    org: str | None = None
    #: (kind, normalised value) of the subject; None places an org-wide hold.
    subject: tuple[IdentifierKind, str] | None = None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def place(
    session: Session,
    placement: Placement,
    *,
    protection: Protection,
    default_org: str | None,
    by: str,
    at: datetime,
) -> LegalHold:
    """Record a hold with its `hold.placed` leaf, and stop at once the org's requests it covers
    that are deleting (what is already sent to Salesforce cannot be recalled). Raises UnknownOrg,
    InvalidTransition (an end that is not in the future)."""
    if placement.ends_at <= at:
        raise InvalidTransition("a hold must end in the future")
    org = resolve_org(session, placement.org, default_org=default_org)
    lock_holds(session, org.id)
    hold_id = uuid.uuid4()
    sealed = protection.vault.seal(placement.reason, context=reason_context(hold_id))
    kind, blind = None, None
    if placement.subject is not None:
        kind = placement.subject[0]
        blind = pseudonym(protection.pseudonym_key, kind, placement.subject[1])
    legal_hold = LegalHold(
        id=hold_id,
        org_id=org.id,
        scope=HoldScope.ORG if blind is None else HoldScope.SUBJECT,
        identifier_kind=kind,
        blind_index=blind,
        reason_ciphertext=sealed.ciphertext,
        reason_key_id=sealed.key_id,
        ends_at=placement.ends_at,
        placed_by=by,
        created_at=at,
    )
    session.add(legal_hold)
    session.flush()
    leaves.append(
        session,
        kind="hold.placed",
        request_id=None,
        at=at,
        data={
            "hold": str(hold_id),
            "org": org.name,
            "scope": legal_hold.scope.value,
            "subject": None
            if blind is None or kind is None
            else {"kind": kind.value, "pseudonym": blind.hex()},
            "ends_at": leaves.timestamp(placement.ends_at),
            "reason_sha256": _sha256(placement.reason),
            "by": by,
        },
    )
    _stop_covered(session, org, blind, at=at, by=by)
    return legal_hold


def _stop_covered(
    session: Session, org: Org, blind: bytes | None, *, at: datetime, by: str
) -> None:
    query = select(ErasureRequest.id).where(
        ErasureRequest.org_id == org.id,
        ErasureRequest.status.in_((RequestStatus.DELETING, RequestStatus.ON_HOLD)),
    )
    if blind is not None:
        query = query.where(
            ErasureRequest.id.in_(
                select(SubjectIdentifier.request_id).where(SubjectIdentifier.blind_index == blind)
            )
        )
    for request_id in list(session.scalars(query.order_by(ErasureRequest.id))):
        request = lock_request(session, request_id)
        if request is None:
            continue
        hold_ids = covering(session, request, at)
        if not hold_ids:
            continue
        if request.status is RequestStatus.DELETING:
            hold(session, request, hold_ids, at=at, by=by)
        elif request.status is RequestStatus.ON_HOLD:
            wait = open_wait(session, request.id)
            if wait is not None:
                wait.hold_ids = hold_ids


def release(session: Session, hold_id: uuid.UUID, *, by: str, at: datetime) -> LegalHold:
    """End a hold now, with its `hold.released` leaf; the requests only it held resume (the
    sweep's next pass resumes any left over). Raises NotFound, InvalidTransition."""
    legal_hold = session.scalar(select(LegalHold).where(LegalHold.id == hold_id))
    if legal_hold is None:
        raise NotFound("no such legal hold")
    lock_holds(session, legal_hold.org_id)
    session.refresh(legal_hold, with_for_update=True)
    if legal_hold.released_at is not None:
        raise InvalidTransition("the hold is already released")
    if legal_hold.ends_at <= at:
        raise InvalidTransition("the hold has already ended")
    legal_hold.released_at, legal_hold.released_by = at, by
    leaves.append(
        session,
        kind="hold.released",
        request_id=None,
        at=at,
        data={"hold": str(hold_id), "by": by},
    )
    resume_free(session, at=at, org_id=legal_hold.org_id)
    return legal_hold


def override(
    session: Session,
    request_id: uuid.UUID,
    *,
    reason: str,
    vault: Vault,
    by: str,
    at: datetime,
) -> ErasureRequest:
    """An approver lets a held request go on despite its holds (and any other placed before
    now), with a reason: sealed on the wait, its SHA-256 in the `request.hold_overridden` leaf.
    Raises NotFound, InvalidTransition."""
    request = lock_request(session, request_id)
    if request is None:
        raise NotFound("no such erasure request")
    if request.status is not RequestStatus.ON_HOLD:
        raise InvalidTransition(f"the request is {request.status.value}, not on hold")
    wait = open_wait(session, request.id)
    sealed = vault.seal(reason, context=override_context(wait.id)) if wait else None
    resume(
        session,
        request,
        at=at,
        how=OVERRIDE,
        by=by,
        reason=sealed,
        reason_sha256=_sha256(reason),
    )
    return request


def get(session: Session, hold_id: uuid.UUID) -> LegalHold:
    legal_hold = session.get(LegalHold, hold_id)
    if legal_hold is None:
        raise NotFound("no such legal hold")
    return legal_hold


def list_holds(session: Session, *, active_only: bool, at: datetime) -> list[LegalHold]:
    """Newest first; at most LIST_LIMIT."""
    query = select(LegalHold).order_by(LegalHold.created_at.desc(), LegalHold.id)
    if active_only:
        query = query.where(is_active(at))
    return list(session.scalars(query.limit(LIST_LIMIT)))


def open_reason(vault: Vault, legal_hold: LegalHold) -> str | None:
    """The hold's reason; None once retention destroyed it."""
    if legal_hold.reason_ciphertext is None or legal_hold.reason_key_id is None:
        return None
    return vault.open(
        Sealed(legal_hold.reason_key_id, legal_hold.reason_ciphertext),
        context=reason_context(legal_hold.id),
    )


def held_requests(session: Session, hold_id: uuid.UUID) -> list[uuid.UUID]:
    """The requests that wait on this hold now."""
    return list(
        session.scalars(
            select(HoldWait.request_id)
            .where(HoldWait.ended_at.is_(None), literal(hold_id) == any_(HoldWait.hold_ids))
            .order_by(HoldWait.held_at)
            .limit(LIST_LIMIT)
        )
    )


def waits_of(session: Session, request_id: uuid.UUID) -> list[HoldWait]:
    """Every wait of a request on legal holds, oldest first."""
    return list(
        session.scalars(
            select(HoldWait).where(HoldWait.request_id == request_id).order_by(HoldWait.held_at)
        )
    )


def open_override_reason(vault: Vault, wait: HoldWait) -> str | None:
    if wait.override_reason_ciphertext is None or wait.override_reason_key_id is None:
        return None
    return vault.open(
        Sealed(wait.override_reason_key_id, wait.override_reason_ciphertext),
        context=override_context(wait.id),
    )


def state(legal_hold: LegalHold, at: datetime) -> str:
    if legal_hold.released_at is not None:
        return "released"
    if legal_hold.ends_at <= at:
        return "ended"
    return "active"


def waiting_on(session: Session, request_id: uuid.UUID) -> list[LegalHold]:
    """The holds a request waits on now (empty unless it is on hold)."""
    wait = session.scalar(
        select(HoldWait).where(HoldWait.request_id == request_id, HoldWait.ended_at.is_(None))
    )
    if wait is None or not wait.hold_ids:
        return []
    return list(
        session.scalars(
            select(LegalHold)
            .where(LegalHold.id.in_(wait.hold_ids))
            .order_by(LegalHold.created_at, LegalHold.id)
        )
    )
