"""What a callback says: the Standard Webhooks and OpenDSR bodies for a request event, and the
links they carry. Payloads carry no subject identifier."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erasure.core.models import ErasureRequest, RequestStatus

OPENDSR_API_VERSION = "2.0"


@dataclass(frozen=True)
class Links:
    public_url: str

    def request(self, request_id: uuid.UUID) -> str:
        return f"{self.public_url.rstrip('/')}/v1/erasure-requests/{request_id}"

    def certificate(self, request_id: uuid.UUID) -> str:
        return self.request(request_id) + "/certificate"


def event_status(kind: str, erasure_request: ErasureRequest) -> RequestStatus:
    try:
        return RequestStatus(kind.removeprefix("request."))
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
    erasure_request: ErasureRequest, *, kind: str, at: datetime, links: Links
) -> dict[str, Any]:
    """The Standard Webhooks payload: ids, status, reference, dates, links. No identifier."""
    status = event_status(kind, erasure_request)
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
    erasure_request: ErasureRequest, *, kind: str, callback_url: str, links: Links
) -> dict[str, Any]:
    status = event_status(kind, erasure_request)
    return {
        "api_version": OPENDSR_API_VERSION,
        "controller_id": str(erasure_request.api_key_id) if erasure_request.api_key_id else None,
        "subject_request_id": erasure_request.reference_id,
        "request_status": opendsr_status(status),
        "expected_completion_time": iso(
            erasure_request.predicted_completion_at or erasure_request.due_at
        ),
        "status_callback_url": callback_url,
        "results_url": links.certificate(erasure_request.id)
        if status is RequestStatus.COMPLETED
        else None,
    }


def encode(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)
