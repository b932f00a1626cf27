"""How the API shows an erasure request (links, counts, the linked request only where the caller
may see it, free text only on a single read by a role that may read notes)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import select

from erasure import free_text
from erasure.api.auth import current_key, integration_scope
from erasure.api.schemas import ErasureRequestOut, HoldNoticeOut, LinksOut, ReferenceOut
from erasure.core.models import ErasureRequest, RequestStatus
from erasure.core.new_request import NewRequest
from erasure.lifecycle import holds
from erasure.web.resources import get_session, web_resources


def request_url(request_id: uuid.UUID) -> str:
    return f"{web_resources().settings.public_url.rstrip('/')}/v1/erasure-requests/{request_id}"


_LOOK_UP = object()


def visible_link(
    erasure_request: ErasureRequest | NewRequest, link_owner: uuid.UUID | object | None = _LOOK_UP
) -> uuid.UUID | None:
    """The request this one is linked to, if the caller may read that request: an integration
    sees only what it submitted, so it is not told the id of (or that there is) another system's
    open request for the same subject. `link_owner`, when the caller already loaded it (a list
    joins it), is the API key that submitted the linked request; otherwise it is looked up."""
    linked = erasure_request.duplicate_of_id
    scope = integration_scope()
    if linked is None or scope is None:
        return linked
    owner = link_owner
    if owner is _LOOK_UP:
        owner = get_session().scalar(
            select(ErasureRequest.api_key_id).where(ErasureRequest.id == linked)
        )
    return linked if owner == scope else None


def render(
    erasure_request: ErasureRequest | NewRequest,
    *,
    reveal_free_text: bool = False,
    link_owner: uuid.UUID | object | None = _LOOK_UP,
) -> dict[str, Any]:
    """The request as the API shows it. Its notes and cancel reason (free text that may name the
    subject) are decrypted only with `reveal_free_text` (the single read: never a list, nor an
    answer stored for idempotent replay) and only for roles that may read notes. A request just
    written is rendered from its plain value (`NewRequest`), the same fields as read back."""
    url = request_url(erasure_request.id)
    linked = visible_link(erasure_request, link_owner)
    notes = cancel_reason = None
    if (
        reveal_free_text
        and isinstance(erasure_request, ErasureRequest)
        and current_key().role in free_text.NOTE_READERS
    ):
        vault = web_resources().protection.vault
        notes = free_text.open_notes(vault, erasure_request)
        cancel_reason = free_text.open_cancel_reason(vault, erasure_request)
    held = erasure_request.status is RequestStatus.ON_HOLD
    waiting_on = holds.waiting_on(get_session(), erasure_request.id) if held else []
    reference = None
    if erasure_request.reference_system or erasure_request.reference_id:
        reference = ReferenceOut(
            system=erasure_request.reference_system,
            id=erasure_request.reference_id,
            url=erasure_request.reference_url,
        )
    out = ErasureRequestOut(
        id=erasure_request.id,
        status=erasure_request.status,
        org=erasure_request.org.name,
        source=erasure_request.source,
        regulation=erasure_request.regulation,
        scope=erasure_request.scope,
        received_at=erasure_request.received_at,
        due_at=erasure_request.due_at,
        reference=reference,
        duplicate_of=linked,
        predicted_completion_at=erasure_request.predicted_completion_at,
        is_at_risk=erasure_request.is_at_risk,
        outcome=erasure_request.outcome,
        notes=notes,
        cancel_reason=cancel_reason,
        targets=dict(Counter(target.status.value for target in erasure_request.targets)),
        legal_holds=[HoldNoticeOut(id=h.id, ends_at=h.ends_at) for h in waiting_on],
        created_at=erasure_request.created_at,
        updated_at=erasure_request.updated_at,
        completed_at=erasure_request.completed_at,
        links=LinksOut.model_validate(
            {
                "self": url,
                "cancel": None if erasure_request.status.is_terminal else f"{url}/cancel",
                "duplicate_of": request_url(linked) if linked else None,
                "override_hold": f"{url}/override-hold" if held else None,
            }
        ),
    )
    return out.model_dump(mode="json", by_alias=True)
