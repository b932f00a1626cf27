"""Producing a notice for a request: render the current template on the request's facts, seal the
text, append the leaf (kind, request, template version: never the text) and, when the subject gave
an email address, queue the mail in the outbox. Nothing here commits.

The address itself is not read here: it stays sealed until the mail worker sends (erasure.notices.mail).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import task_names
from erasure.audit import leaves
from erasure.core.models import (
    ErasureRequest,
    IdentifierKind,
    RequestStatus,
    SubjectIdentifier,
)
from erasure.errors import InvalidTransition, NotFound
from erasure.identifiers import Sealed, Vault
from erasure.notices import templates
from erasure.notices.models import Notice, NoticeDelivery, NoticeKind
from erasure.outbox import messages as outbox

#: The kinds a person can ask for; extension notices are made by the extension itself.
ON_DEMAND = (NoticeKind.ACKNOWLEDGEMENT, NoticeKind.COMPLETION)
COMPLETED_STATUSES = frozenset({RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA})


def text_context(notice_id: uuid.UUID) -> str:
    """Associated data that binds a notice's sealed text to its row."""
    return f"notice:{notice_id}"


def _day(moment: datetime | None) -> str:
    return f"{moment.day} {moment:%B %Y}" if moment is not None else ""


def context_for(
    request: ErasureRequest,
    kind: NoticeKind,
    *,
    previous_due_at: datetime | None = None,
    reason: str | None = None,
) -> dict[str, object]:
    """The values a template sees: the request's dates and reference, never an identifier."""
    return {
        "reference": request.reference_id or str(request.id),
        "request_id": str(request.id),
        "regulation": templates.regulation_name(request.regulation.value),
        "received_on": _day(request.received_at),
        "due_on": _day(request.due_at),
        "previous_due_on": _day(previous_due_at),
        "extension_reason": reason or "",
        "completed_on": _day(request.completed_at),
        "found_data": request.status is not RequestStatus.COMPLETED_NO_DATA,
    }


def has_email(session: Session, request_id: uuid.UUID) -> bool:
    """Whether the request holds an email address still sealed (not shredded)."""
    return (
        session.scalar(
            select(SubjectIdentifier.id)
            .where(
                SubjectIdentifier.request_id == request_id,
                SubjectIdentifier.kind == IdentifierKind.EMAIL,
                SubjectIdentifier.ciphertext.is_not(None),
            )
            .limit(1)
        )
        is not None
    )


def issue(
    session: Session,
    request: ErasureRequest,
    kind: NoticeKind,
    *,
    vault: Vault,
    at: datetime,
    by: str | None,
    previous_due_at: datetime | None = None,
    reason: str | None = None,
) -> Notice:
    """Render and keep one notice; queue its mail when the request has an email address.
    Raises TemplateProblem when the stored template cannot render (an admin's mistake)."""
    template = templates.current(session, kind)
    rendered = templates.render(
        template, context_for(request, kind, previous_due_at=previous_due_at, reason=reason)
    )
    mailed = has_email(session, request.id)
    notice = Notice(
        id=uuid.uuid4(),
        request_id=request.id,
        kind=kind,
        template_version=template.version,
        delivery=NoticeDelivery.QUEUED if mailed else NoticeDelivery.DOWNLOAD_ONLY,
        next_attempt_at=at if mailed else None,
        created_by=by,
        created_at=at,
    )
    sealed = vault.seal(
        json.dumps({"subject": rendered.subject, "body": rendered.body}),
        context=text_context(notice.id),
    )
    notice.text_ciphertext, notice.text_key_id = sealed.ciphertext, sealed.key_id
    session.add(notice)
    leaves.append(
        session,
        kind="notice.generated",
        request_id=request.id,
        at=at,
        data={
            "notice_id": str(notice.id),
            "notice_kind": kind.value,
            "template_version": template.version,
            "mail": mailed,
            "by": by,
        },
    )
    if mailed:
        outbox.enqueue(session, task_names.SEND_NOTICE, [str(notice.id)])
    session.flush()
    return notice


def issue_on_demand(
    session: Session,
    request_id: uuid.UUID,
    kind: NoticeKind,
    *,
    vault: Vault,
    at: datetime,
    by: str | None,
    api_key_id: uuid.UUID | None = None,
) -> Notice:
    """An acknowledgement (any time) or a completion letter (once the request completed).
    Raises NotFound, InvalidTransition, TemplateProblem."""
    request = session.get(ErasureRequest, request_id)
    if request is None or (api_key_id is not None and request.api_key_id != api_key_id):
        raise NotFound("no such erasure request")
    if kind not in ON_DEMAND:
        raise InvalidTransition("extension notices are made when the deadline is extended")
    if kind is NoticeKind.COMPLETION and request.status not in COMPLETED_STATUSES:
        raise InvalidTransition(f"the request is {request.status.value}, not completed")
    return issue(session, request, kind, vault=vault, at=at, by=by)


def for_request(session: Session, request_id: uuid.UUID) -> Sequence[Notice]:
    return session.scalars(
        select(Notice)
        .where(Notice.request_id == request_id)
        .order_by(Notice.created_at.desc(), Notice.id)
    ).all()


def get(
    session: Session,
    request_id: uuid.UUID,
    notice_id: uuid.UUID,
    *,
    api_key_id: uuid.UUID | None = None,
) -> Notice:
    """One notice of one request. Raises NotFound."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.request_id != request_id:
        raise NotFound("no such notice")
    if api_key_id is not None:
        request = session.get(ErasureRequest, request_id)
        if request is None or request.api_key_id != api_key_id:
            raise NotFound("no such notice")
    return notice


def open_text(vault: Vault, notice: Notice) -> templates.Rendered | None:
    """The notice's subject and letter, or None once retention destroyed them."""
    if notice.text_ciphertext is None or notice.text_key_id is None:
        return None
    document = json.loads(
        vault.open(
            Sealed(notice.text_key_id, notice.text_ciphertext), context=text_context(notice.id)
        )
    )
    return templates.Rendered(subject=document["subject"], body=document["body"])
