"""The sandbox's API host (`/platform/engagement/v1.0`): deletes, entries, limits and faults.

A mixin of `SandboxOrg`: it uses the org's state under the org's lock and never sleeps holding it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from erasure.salesforce import ids as sfids
from erasure.salesforce.models import Route
from erasure.salesforce.sandbox.auth import Claims, TokenAuthority, TokenProblemError
from erasure.salesforce.sandbox.config import Reply, SandboxConfig
from erasure.salesforce.sandbox.data import OrgData
from erasure.salesforce.sandbox.limits import Fault, FaultBook, SlidingWindows

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


class EngagementApi:
    """Handlers for the engagement paths; the state they use is `SandboxOrg`'s."""

    lock: threading.RLock
    config: SandboxConfig
    data: OrgData
    authority: TokenAuthority
    windows: SlidingWindows
    faults: FaultBook
    accepted_ids: dict[str, list[str]]

    def now(self) -> float:
        raise NotImplementedError

    def _tick(self) -> None:
        raise NotImplementedError

    def _count(self, route: str, client_id: str | None) -> None:
        raise NotImplementedError

    # -- API host (engagement) ----------------------------------------------------------------

    def _engagement_auth(self, authorization: str | None) -> Claims | Reply:
        try:
            claims = self.authority.check(authorization, now=self.now())
        except TokenProblemError:
            return Reply(401, INVALID_SESSION, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not claims.is_jwt:
            # KB 005232704: a token that is not a JWT gets 404 from api.salesforce.com.
            return Reply(404, {"message": "Not Found"})
        if "sfap_api" not in claims.scopes:
            return Reply(
                401, INVALID_SESSION, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
            )
        return claims

    def _engagement_gate(self, route: Route, authorization: str | None) -> Claims | Reply:
        """Toggle, auth, "before" faults and the rate limit, in the order Salesforce would."""
        if not self.config.api_enabled:
            self._count(route, None)
            return Reply(404, {"message": "Not Found"})
        claims = self._engagement_auth(authorization)
        self._count(route, claims.client_id if isinstance(claims, Claims) else None)
        if isinstance(claims, Reply):
            return claims
        if route.is_delete:
            limit, window = self.config.delete_limit, self.config.hour_s
        else:
            limit, window = self.config.entries_limit, self.config.minute_s
        wait = self.windows.retry_after(
            claims.user_id, route, limit=limit, window_s=window, now=self.now()
        )
        if wait:
            # A rejected call does not use the budget.
            return Reply(
                429,
                [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "rate limit exceeded"}],
                {"Retry-After": str(wait)},
            )
        return claims

    def not_found(self) -> Reply:
        """Any other engagement path: 404, as the real API answers a wrong path."""
        return Reply(404, {"message": "Not Found"})

    def delete(
        self,
        route: Route,
        authorization: str | None,
        body: bytes,
        args: Mapping[str, str] | None = None,
    ) -> Reply:
        with self.lock:
            gate = self._engagement_gate(route, authorization)
            if isinstance(gate, Reply):
                return gate
            claims = gate
            fault = self.faults.take(route, claims.client_id)
            if fault is not None and fault.when == "before" and fault.status is not None:
                return self._fault_reply(fault)
            self.windows.spend(claims.user_id, route, now=self.now())
            self._tick()
            reply = self._delete(route, claims, body, args or {})
            if fault is not None:
                if fault.status is not None:
                    return self._fault_reply(fault)
                reply.latency_s = fault.latency_s
            return reply

    def _fault_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return Reply(fault.status or 500, {"message": "injected fault"}, headers, fault.latency_s)

    def _requested_ids(
        self, field_name: str, body: bytes, args: Mapping[str, str]
    ) -> list[Any] | Reply:
        """The ids, from the JSON body or the query string as the org takes them."""
        mode = self.config.delete_ids_in
        in_body = mode in ("body", "either") and bool(body.strip())
        in_query = mode in ("query", "either") and field_name in args
        if in_body and in_query:
            return Reply(400, [{"errorCode": "INVALID_INPUT", "message": "ids given twice"}])
        if in_query:
            # Comma-separated; an empty item is a malformed id, as it would be in a body.
            return args[field_name].split(",")
        if not in_body:
            return Reply(
                400, [{"errorCode": "INVALID_INPUT", "message": f"{field_name} is required"}]
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return Reply(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "malformed JSON"}])
        ids = payload.get(field_name) if isinstance(payload, dict) else None
        if not isinstance(ids, list):
            return Reply(
                400, [{"errorCode": "INVALID_INPUT", "message": f"{field_name} is required"}]
            )
        return ids

    def _delete(  # noqa: PLR0911 -- one reply per Salesforce rule
        self, route: Route, claims: Claims, body: bytes, args: Mapping[str, str]
    ) -> Reply:
        participants = route is Route.DELETE_PARTICIPANTS
        field_name = (
            self.config.participant_ids_field
            if participants
            else self.config.conversation_ids_field
        )
        ids = self._requested_ids(field_name, body, args)
        if isinstance(ids, Reply):
            return ids
        if not ids:
            return Reply(
                400, [{"errorCode": "INVALID_INPUT", "message": f"{field_name} is required"}]
            )
        if len(ids) > self.config.max_ids_per_call:
            return Reply(
                400,
                [
                    {
                        "errorCode": "LIMIT_EXCEEDED",
                        "message": f"at most {self.config.max_ids_per_call} ids",
                    }
                ],
            )
        if not all(isinstance(i, str) and sfids.is_valid(i) for i in ids):
            return Reply(400, [{"errorCode": "MALFORMED_ID", "message": "malformed id"}])
        sobject = "MessagingEndUser" if participants else "Conversation"
        full = [sfids.to18(i) for i in ids]
        if len({i[:15] for i in full}) != len(full):
            return Reply(400, [{"errorCode": "DUPLICATE_VALUE", "message": "duplicate ids"}])
        known = [self.data.find(sobject, i) for i in full]
        if self.config.unknown_id_mode == "not_found" and not any(known):
            return Reply(404, {"message": "Not Found"})
        busy = self._busy_reason(participants, [r for r in known if r is not None])
        if busy is not None:
            return Reply(412, [{"errorCode": "PRECONDITION_FAILED", "message": busy}])
        operation = (
            "deleteConversationParticipantData" if participants else "deleteConversationsById"
        )
        logs = []
        for entity_id in full:
            log = self.data.create_log(
                entity_id=entity_id,
                entity_type=sobject,
                operation=operation,
                user=claims.user_id,
                now=self.now(),
            )
            self.accepted_ids[route].append(entity_id)
            logs.append(
                {
                    "id": log.id,
                    "requestedEntityIdentifier": entity_id[:15],
                    "requestedEntityType": sobject,
                    "action": "Delete",
                    "operation": operation,
                    "status": log.status,
                }
            )
        return Reply(202, {"conversationApiLogs": logs})

    def _busy_reason(self, participants: bool, records: list[dict[str, Any]]) -> str | None:
        """Why a delete of these records gets 412: an open session, or a conversation an entries
        read made active (documented side effect, about 30 minutes)."""
        now = self.now()
        closed = {s.lower() for s in self.config.closed_session_statuses}
        for record in records:
            if participants:
                sessions = self.data.sessions_of(record["Id"])
                if any(str(s["Status"]).lower() not in closed for s in sessions):
                    return "messaging end user has an open session"
                conv_ids = self.data.conversations_of(record["Id"])
            else:
                conv_ids = {str(record["Id"])}
            if any(self.data.is_active(c, now) for c in conv_ids):
                return "conversation is active"
        return None

    def entries(self, authorization: str | None, args: Mapping[str, str]) -> Reply:
        with self.lock:
            gate = self._engagement_gate(Route.ENTRIES, authorization)
            if isinstance(gate, Reply):
                return gate
            fault = self.faults.take(Route.ENTRIES, gate.client_id)
            if fault is not None and fault.status is not None:
                return self._fault_reply(fault)
            self.windows.spend(gate.user_id, Route.ENTRIES, now=self.now())
            self._tick()
            identifier = args.get("conversationIdentifier")
            if not identifier:
                return Reply(400, {"message": "conversationIdentifier is required"})
            limit_text = args.get("recordLimit", "25")
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
                return Reply(400, {"message": "recordLimit must be between 1 and 1000"})
            conv_id = self.data.conversation_by_identifier(identifier)
            if conv_id is None:
                return Reply(404, {"message": "conversation not found"})
            # The documented side effect: a read keeps the conversation active for a while.
            until = self.now() + self.config.entries_activity_s
            self.data.active_until[conv_id] = max(until, self.data.active_until.get(conv_id, 0.0))
            start = int(args.get("pageToken", "0") or 0)
            entries = self.data.entries.get(conv_id, [])
            page = entries[start : start + int(limit_text)]
            body: dict[str, Any] = {"conversationEntries": page}
            if start + len(page) < len(entries):
                body["nextPageToken"] = str(start + len(page))
            return Reply(200, body, latency_s=fault.latency_s if fault else 0.0)
