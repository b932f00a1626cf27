"""An access request's events as callbacks: the callback dispatcher (erasure.integrations.
callbacks) reads the audit log and asks this for the leaves it does not know. Each leaf that
moves an access request to a new status becomes one Standard Webhooks event
(`access_request.<status>`) for the subscriptions of the request's API key. A payload carries
ids, status, reference, dates and links; never an identifier, never the export or its download
links (those are the officer's, expiring, read from the API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from erasure.access.models import AccessRequest, AccessStatus
from erasure.audit.models import AuditLeaf

#: The leaves that move an access request, and where to. `access.export_destroyed` is left out:
#: it ends no request (the request was ready; its download link now fails).
MOVES = {
    "access.received": AccessStatus.RECEIVED,
    "access.resolved": AccessStatus.RETRIEVING,
    "access.disclosed": AccessStatus.READY,
    "access.completed_no_data": AccessStatus.COMPLETED_NO_DATA,
    "access.cancelled": AccessStatus.CANCELLED,
    "access.failed": AccessStatus.FAILED,
}


class Links(Protocol):
    """The dispatcher's links (erasure.integrations.callbacks.Links): only the one used here,
    so this domain imports nothing of the HTTP side."""

    def access_request(self, request_id: uuid.UUID) -> str: ...


@dataclass(frozen=True)
class Told:
    """One event for the subscriptions of `api_key_id` (erasure.integrations.callbacks.Told)."""

    access_request_id: uuid.UUID
    api_key_id: uuid.UUID | None
    document: dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    # As the erasure callbacks write dates: UTC with a Z.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def standard_body(
    access: AccessRequest, *, status: AccessStatus, leaf: AuditLeaf, links: Links
) -> dict[str, Any]:
    url = links.access_request(access.id)
    return {
        "type": f"access_request.{status.value}",
        "timestamp": iso(leaf.created_at),
        "data": {
            "id": str(access.id),
            "status": status.value,
            "reference": {
                "system": access.reference_system,
                "id": access.reference_id,
                "url": access.reference_url,
            },
            "due_at": iso(access.due_at),
            "url": url,
            # The certificate of disclosure (its audit leaves say what was disclosed).
            "certificate_url": f"{url}/certificate" if status is AccessStatus.READY else None,
        },
    }


class AccessEvents:
    """The dispatcher's reader of access-request leaves (erasure.integrations.callbacks.Told)."""

    def told(self, session: Session, leaf: AuditLeaf, links: Links) -> Told | None:
        status = MOVES.get(leaf.kind)
        if status is None or leaf.request_id is None:
            return None
        access = session.get(AccessRequest, leaf.request_id)
        if access is None:
            return None
        return Told(
            access_request_id=access.id,
            api_key_id=access.api_key_id,
            document=standard_body(access, status=status, leaf=leaf, links=links),
        )
