"""What Salesforce answers (SOQL rows, Connect API items) turned into our dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from erasure.salesforce.models import ApiLog, SessionRef


def session_ref(r: Mapping[str, Any]) -> SessionRef:
    return SessionRef(
        id=str(r["Id"]),
        end_user_id=str(r["MessagingEndUserId"]),
        conversation_id=r.get("ConversationId"),
        status=str(r.get("Status")),
    )


def api_log(item: Mapping[str, Any]) -> ApiLog:
    return ApiLog(
        id=str(item["id"]),
        requested_entity_identifier=str(item["requestedEntityIdentifier"]),
        requested_entity_type=item.get("requestedEntityType"),
        status=str(item["status"]),
        action=item.get("action"),
        operation=item.get("operation"),
    )


def api_log_row(r: Mapping[str, Any]) -> ApiLog:
    return ApiLog(
        id=str(r["Id"]),
        requested_entity_identifier=str(r["RequestedEntityIdentifier"]),
        requested_entity_type=r.get("RequestedEntityType"),
        status=str(r.get("Status")),
        action=r.get("Action"),
        operation=r.get("Operation"),
        status_history=r.get("StatusHistory"),
        context=r.get("Context"),
        requested_date=r.get("RequestedDate"),
    )
