"""What a callback says: the Standard Webhooks and OpenDSR bodies for a request event, and the
links they carry. Payloads carry no subject identifier."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, RequestStatus

OPENDSR_API_VERSION = "2.0"


@dataclass(frozen=True)
class Links:
    public_url: str

    def request(self, request_id: uuid.UUID) -> str:
        return f"{self.public_url.rstrip('/')}/v1/erasure-requests/{request_id}"

    def certificate(self, request_id: uuid.UUID) -> str:
        return self.request(request_id) + "/certificate"

    def access_request(self, request_id: uuid.UUID) -> str:
        return f"{self.public_url.rstrip('/')}/v1/access-requests/{request_id}"


def event_status(leaf: AuditLeaf, erasure_request: ErasureRequest) -> RequestStatus:
    """The status a leaf reports: its kind's, else the status it moved to (`request.resolved`
    moves to deleting), else the request's now. Never the request's now when the leaf says:
    the dispatcher may read a leaf after later transitions, and must report them in order."""
    try:
        return RequestStatus(leaf.kind.removeprefix("request."))
    except ValueError:
        pass
    data = json.loads(leaf.leaf).get("data")
    moved_to = data.get("to_status") if isinstance(data, dict) else None
    try:
        return RequestStatus(str(moved_to))
    except ValueError:
        return erasure_request.status


def opendsr_status(status: RequestStatus) -> str:
    if status in {RequestStatus.COMPLETED, RequestStatus.COMPLETED_NO_DATA}:
        return "completed"
    if status in {RequestStatus.CANCELLED, RequestStatus.REJECTED, RequestStatus.FAILED}:
        return "cancelled"
    if status in {RequestStatus.RECEIVED, RequestStatus.AWAITING_APPROVAL, RequestStatus.APPROVED}:
        return "pending"
    return "in_progress"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def standard_body(
    erasure_request: ErasureRequest,
    *,
    kind: str,
    status: RequestStatus,
    at: datetime,
    links: Links,
) -> dict[str, Any]:
    """The Standard Webhooks payload: ids, status, reference, dates, links. No identifier."""
    return {
        "type": f"erasure_request.{kind.removeprefix('request.')}",
        "timestamp": iso(at),
        "data": {
            "id": str(erasure_request.id),
            "status": status.value,
            "reference": {
                "system": erasure_request.reference_system,
                "id": erasure_request.reference_id,
                "url": erasure_request.reference_url,
            },
            "due_at": iso(erasure_request.due_at),
            "predicted_completion_at": iso(erasure_request.predicted_completion_at),
            "url": links.request(erasure_request.id),
            "certificate_url": links.certificate(erasure_request.id)
            if status is RequestStatus.COMPLETED
            else None,
        },
    }


def opendsr_body(
    erasure_request: ErasureRequest, *, status: RequestStatus, callback_url: str, links: Links
) -> dict[str, Any]:
    """An OpenDSR callback (§8.6); `results_url` (optional) only once there is a result."""
    document = {
        "api_version": OPENDSR_API_VERSION,
        "controller_id": str(erasure_request.api_key_id or ""),
        "subject_request_id": erasure_request.reference_id,
        "request_status": opendsr_status(status),
        "expected_completion_time": iso(
            erasure_request.predicted_completion_at or erasure_request.due_at
        ),
        "status_callback_url": callback_url,
    }
    if status is RequestStatus.COMPLETED:
        document["results_url"] = links.certificate(erasure_request.id)
    return document


def encode(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)
