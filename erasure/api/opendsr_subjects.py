"""One OpenDSR `subject_request_id` space for erasure and access requests: a controller's id names
one request of either type (the same request again is answered with the first; another request
under the same id, of either type, is a conflict). Nothing here commits."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.access import opendsr_intake
from erasure.access.models import AccessRequest
from erasure.core.models import ErasureRequest
from erasure.errors import NotFound
from erasure.integrations import opendsr
from erasure.integrations.transport import AddressGuard
from erasure.web.inputs import ConversationScopeIn, validation_errors
from erasure.web.problems import invalid_field


def find_any(
    session: Session, *, api_key_id: uuid.UUID, subject_request_id: str
) -> ErasureRequest | AccessRequest:
    """The erasure or access request under this id; NotFound if neither."""
    try:
        return opendsr.find(session, api_key_id=api_key_id, subject_request_id=subject_request_id)
    except NotFound:
        return opendsr_intake.find_access(
            session, api_key_id=api_key_id, subject_request_id=subject_request_id
        )


def create_any(
    session: Session,
    request: opendsr.OpenDsrRequest,
    *,
    api_key_id: uuid.UUID,
    protection: workflow.Protection,
    default_org: str | None,
    guard: AddressGuard,
) -> tuple[ErasureRequest | AccessRequest, bool]:
    """The erasure or access request for this subject request, (request, created now). Raises
    SubjectRequestConflict when the id already names a request of the other type or another
    subject, and what erasure.integrations.opendsr.create raises."""
    # The lock opendsr.create takes too (advisory locks nest within a transaction): the check
    # across both types and the insert are one step.
    session.execute(
        select(func.pg_advisory_xact_lock(opendsr.lock_key(api_key_id, request.subject_request_id)))
    )
    try:
        existing = find_any(
            session, api_key_id=api_key_id, subject_request_id=request.subject_request_id
        )
    except NotFound:
        existing = None
    if request.request_type == "erasure":
        if isinstance(existing, AccessRequest):
            raise _conflict()
        return opendsr.create(
            session,
            request,
            api_key_id=api_key_id,
            protection=protection,
            default_org=default_org,
            guard=guard,
        )
    wanted = opendsr_intake.OpenDsrAccess(
        subject_request_id=request.subject_request_id,
        api_key_id=api_key_id,
        regulation=request.regulation,
        identifiers=request.identifiers,
        submitted_time=request.submitted_time,
    )
    if isinstance(existing, ErasureRequest):
        raise _conflict()
    if existing is not None:
        if not opendsr_intake.same_access(session, existing, wanted, protection.pseudonym_key):
            raise _conflict()
        return existing, False
    return opendsr_intake.submit(
        session, wanted, protection=protection, default_org=default_org
    ), True


def _conflict() -> opendsr.SubjectRequestConflict:
    return opendsr.SubjectRequestConflict(
        "this subject_request_id was already used for a different request"
    )


class ConversationExtensionIn(ConversationScopeIn):
    # Members we do not know are ignored, as OpenDSR asks of extensions (a controller may send
    # notes of its own); the ones we know are checked like the intake API's.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def conversation_extension(
    extensions: dict[str, Any] | None, *, public_url: str
) -> ConversationScopeIn | None:
    """Our extension of an OpenDSR request, if any: OpenDSR keys a processor's extension by the
    processor's domain (ours: the host of the public URL), and leaves the others' alone. It takes
    what the intake API takes for a conversations-only erasure (other members are ignored); a
    fault is a 400 naming the field (`extensions.<domain>...`), never the value. None when
    there is nothing of ours: the request erases the subject."""
    domain = urlsplit(public_url).hostname or ""
    ours = (extensions or {}).get(domain)
    if ours is None:
        return None
    root = f"extensions.{domain}"
    if not isinstance(ours, dict):
        raise invalid_field(root, "must be an object")
    try:
        extension = ConversationExtensionIn.model_validate(ours)
    except ValidationError as exc:
        first = validation_errors(exc.errors(include_input=False), root="")[0]
        field = f"{root}.{first['field']}" if first["field"] else root
        raise invalid_field(field, first["detail"]) from None
    if extension.scope is None and not extension.conversations:
        return None
    return extension
